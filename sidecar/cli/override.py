"""``sonantica override``: set a track's BPM and/or key by hand, or give them back to the analyzers."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated

import typer

from sidecar.cli.app import app, configured_adapter
from sidecar.domain import KeySignature
from sidecar.errors import SidecarError

if TYPE_CHECKING:
    from sidecar.storage.analyses import AnalysisSummary


def _key(text: str) -> KeySignature:
    try:
        return KeySignature.parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
def override(
    track_id: Annotated[int, typer.Argument(min=1, help="the sidecar's track id")],
    bpm: Annotated[float | None, typer.Option(min=0.001, max=1000, help="the tempo in BPM")] = None,
    key: Annotated[
        KeySignature | None, typer.Option(parser=_key, help="e.g. 'A minor', Am, 'F# major', Camelot 8A")
    ] = None,
    clear: Annotated[list[str], typer.Option("--clear", help="give bpm or key back to the analyzer (repeatable)")] = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json", help="print the analysis record as JSON")] = False,
) -> None:
    """Correct a wrong BPM (half or double tempo) or key. Playlists, filters and the host's tags (Jellyfin) use the
    values at once, and later analyses keep them; --clear bpm puts the analyzer's reading back."""
    from sidecar.services.overrides import override_track
    from sidecar.services.runtime import open_runtime
    from sidecar.settings import get_settings
    from sidecar.storage.overrides import GROUPS

    unknown = sorted(set(clear) - set(GROUPS))
    if unknown:
        raise typer.BadParameter(f"--clear takes {' or '.join(GROUPS)} (got {', '.join(unknown)})")
    changes: dict[str, float | KeySignature | None] = dict.fromkeys(clear)
    if bpm is not None:
        changes["bpm"] = bpm
    if key is not None:
        changes["key"] = key
    if not changes:
        raise typer.BadParameter("give --bpm, --key or --clear")
    settings = get_settings()
    adapter = configured_adapter(settings)

    async def main() -> AnalysisSummary:
        try:
            async with open_runtime(settings) as runtime:
                return await override_track(runtime, track_id, changes, adapter)
        finally:
            if adapter is not None:
                await adapter.aclose()

    try:
        summary = asyncio.run(main())
    except (SidecarError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps({k: v for k, v in summary.items() if k != "path"}, default=str))
        return
    mark = {group: " (yours)" if group in summary["overridden"] else "" for group in GROUPS}
    bpm_text = "-" if summary["bpm"] is None else f"{summary['bpm']:g}"
    typer.echo(f"track {track_id}: {bpm_text} BPM{mark['bpm']}, key {summary['key'] or '-'}{mark['key']}")
