"""``sonantica reanalyze``: queue finished results of one analyzer (or one model) again, e.g. after switching the
embedding model, without resetting the database."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from sidecar.cli.app import app
from sidecar.errors import SidecarError

if TYPE_CHECKING:
    from sidecar.services.reanalyze import ReanalysisReport


@app.command("reanalyze")
def reanalyze_command(
    analyzer: Annotated[
        str, typer.Option("--analyzer", help="analyzer to redo: embedding, tempo, key, loudness or waveform")
    ],
    model: Annotated[
        str | None,
        typer.Option("--model", help="only tracks with stored results of this model (e.g. timbre-v1); embedding only"),
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="only results finished at or after this time (ISO 8601, UTC if no zone)")
    ] = None,
) -> None:
    """Queue finished results of ANALYZER again at scan priority; workers redo them with the current settings
    (e.g. the newly configured embedding model). Tracks already waiting are left alone, so running it twice queues
    nothing the second time."""
    from tqdm import tqdm

    from sidecar.analyzers.versions import enabled_versions
    from sidecar.services.reanalyze import reanalyze
    from sidecar.services.runtime import open_runtime
    from sidecar.settings import get_settings

    settings = get_settings()
    versions = enabled_versions(settings)
    bar = tqdm(unit="track", file=sys.stderr, disable=None, desc=f"reanalyze {analyzer}")

    async def main() -> ReanalysisReport:
        async with open_runtime(settings) as runtime:
            return await reanalyze(runtime, analyzer, versions, model=model, since=since, progress=bar.update)

    try:
        report = asyncio.run(main())
    except SidecarError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        bar.close()
    scope = "".join([f" of model {model}" if model else "", f" finished since {since.isoformat()}" if since else ""])
    typer.echo(
        f"{report.analyzer}: {report.matched} done result(s){scope} matched; queued {report.queued} track(s) at scan"
        f" priority for version {report.version}"
    )
