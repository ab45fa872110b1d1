"""``sonantica stems``: ask for a track's stems, list what exists, delete (evict) them."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated

import typer

from sidecar.cli.app import app
from sidecar.errors import SidecarError

if TYPE_CHECKING:
    from sidecar.storage.stems import StemsRecord

stems_app = typer.Typer(help="Stems on demand (Demucs): request, list, evict.", no_args_is_help=True)
app.add_typer(stems_app, name="stems")


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


@stems_app.command("request")
def request(
    track_id: Annotated[int, typer.Argument(min=1, help="the sidecar's track id")],
    purpose: Annotated[str, typer.Option(help="studio (the four stems) or karaoke (the instrumental)")] = "studio",
    wait_s: Annotated[float, typer.Option("--wait", min=0, help="wait up to this many seconds for StemsReady")] = 0,
) -> None:
    """Queue a separation of one track (once, however often it is asked for); a worker makes the files."""
    from sidecar.services.runtime import open_runtime
    from sidecar.services.stems import PURPOSES, request_stems, stems_queue
    from sidecar.settings import get_settings

    if purpose not in PURPOSES:
        raise typer.BadParameter(f"use one of {', '.join(PURPOSES)}")

    async def main() -> str:
        async with (
            open_runtime(get_settings()) as runtime,
            stems_queue(runtime).subscribe(track_id) as subscription,
        ):
            row, queued = await request_stems(runtime, track_id, purpose=purpose)
            if row.state == "ready" or wait_s == 0:
                return "queued" if queued else row.state
            ready = await subscription.get(timeout_s=wait_s)
            return "ready" if ready is not None else "still " + row.state

    try:
        state = asyncio.run(main())
    except (SidecarError, ValueError) as exc:
        raise _fail(exc) from None
    typer.echo(f"track {track_id}: stems {state}")


@stems_app.command("list")
def list_stems(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Every track that has stems or has asked for them: state, size, model, last use."""
    from sidecar.services.runtime import open_runtime
    from sidecar.settings import get_settings
    from sidecar.storage import stems
    from sidecar.storage.db import transaction

    async def main() -> list[StemsRecord]:
        async with open_runtime(get_settings()) as runtime, transaction(runtime.pool) as conn:
            return await stems.list_stems(conn)

    try:
        rows = asyncio.run(main())
    except SidecarError as exc:
        raise _fail(exc) from None
    for row in rows:
        used = row.last_accessed_at.isoformat(timespec="seconds") if row.last_accessed_at else "-"
        if as_json:
            fields = {"track_id": row.track_id, "state": row.state, "size_bytes": row.size_bytes, "model": row.model}
            typer.echo(json.dumps({**fields, "last_used": used, "error": row.last_error}))
        else:
            size = f"{(row.size_bytes or 0) / 1e6:.1f} MB"
            detail = row.last_error if row.state == "failed" else f"{row.model or '-'} {row.format or ''}".strip()
            typer.echo(f"{row.track_id:>8} {row.state:8} {size:>10} last used {used}  {detail}")
    if not rows and not as_json:
        typer.echo("no stems", err=True)


@stems_app.command("evict")
def evict(
    track: Annotated[list[int] | None, typer.Option(help="delete these tracks' stems now")] = None,
) -> None:
    """Delete stems unused for stems.ttl_days and beyond stems.max_bytes (or, with --track, those tracks')."""
    from sidecar.services.runtime import open_runtime
    from sidecar.services.stems import delete_stems, evict_stems
    from sidecar.settings import get_settings
    from sidecar.storage import stems
    from sidecar.storage.db import transaction

    async def main() -> str:
        async with open_runtime(get_settings()) as runtime:
            if track:
                async with transaction(runtime.pool) as conn:
                    rows = {t: await stems.get_stems(conn, t) for t in dict.fromkeys(track)}
                having = [t for t, row in rows.items() if row is not None and row.state != "none"]
                freed = sum([await delete_stems(runtime, track_id) for track_id in having])
                none = [str(t) for t in rows if t not in having]
                return f"deleted stems of {len(having)} tracks ({freed} bytes)" + (
                    f"; no stems for track {', '.join(none)}" if none else ""
                )
            report = await evict_stems(runtime)
            return (
                f"evicted {len(report.expired)} unused and {len(report.over_quota)} over-quota tracks"
                f" ({report.freed_bytes} bytes)"
            )

    try:
        typer.echo(asyncio.run(main()))
    except SidecarError as exc:
        raise _fail(exc) from None
