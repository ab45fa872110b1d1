"""``sonantica analyze``: BPM, key and loudness of files on disk, as JSON lines or a table."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sidecar.cli.app import app
from sidecar.errors import FatalAnalyzerError

if TYPE_CHECKING:
    from sidecar.analyzers.loudness import AlbumGain
    from sidecar.analyzers.pipeline import TrackAnalysis
    from sidecar.analyzers.summary import Scalar

_PROGRESS_MIN_FILES = 3


def record(analysis: TrackAnalysis) -> dict[str, object]:
    """The JSON object printed for one file: ``{"path", "error"}`` when it could not be decoded, else the
    summary fields, plus ``errors`` (analyzer -> reason) when some analyzer failed on it."""
    from sidecar.analyzers.summary import summarize

    if analysis.error is not None:
        return {"path": analysis.path, "error": analysis.error}
    out: dict[str, object] = {"path": analysis.path}
    out.update(summarize(analysis.info, analysis.results, duration_s=analysis.decoded_duration_s))
    if analysis.failures:
        out["errors"] = {name: failure.error for name, failure in analysis.failures.items()}
    return out


def _album(analyses: list[TrackAnalysis]) -> AlbumGain | None:
    from sidecar.analyzers.loudness import album_gain
    from sidecar.domain import LoudnessResult

    loudness = [r for a in analyses if isinstance(r := a.results.get("loudness"), LoudnessResult)]
    return album_gain(loudness) if loudness else None


def _fmt(value: Scalar | object, spec: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec or ".2f")
    return str(value)


_COLUMNS: tuple[tuple[str, str, str, int], ...] = (
    ("duration_s", "length s", ".1f", 8),
    ("bpm", "BPM", ".1f", 6),
    ("key", "key", "", 9),
    ("camelot", "Camelot", "", 7),
    ("loudness_lufs", "LUFS", ".1f", 6),
    ("loudness_range_lu", "LRA", ".1f", 5),
    ("true_peak_dbtp", "dBTP", ".1f", 5),
    ("replaygain_track_gain_db", "RG dB", "+.2f", 6),
)


def _table(rows: list[dict[str, object]], *, album: bool) -> str:
    columns = _COLUMNS + ((("replaygain_album_gain_db", "album dB", "+.2f", 8),) if album else ())
    name_width = max([len("file")] + [len(Path(str(r["path"])).name) for r in rows])
    header = "file".ljust(name_width) + "".join("  " + title.rjust(width) for _, title, _, width in columns)
    lines = [header, "-" * len(header)]
    for row in rows:
        name = Path(str(row["path"])).name.ljust(name_width)
        if "error" in row:
            lines.append(f"{name}  error: {row['error']}")
            continue
        cells = "".join("  " + _fmt(row.get(field), spec).rjust(width) for field, _, spec, width in columns)
        problems = row.get("errors")
        lines.append(name + cells + (f"  ({problems})" if problems else ""))
    return "\n".join(lines)


@app.command()
def analyze(
    paths: Annotated[list[Path], typer.Argument(help="audio files, or folders searched recursively")],
    json_lines: Annotated[bool, typer.Option("--json", help="one JSON object per file, one per line")] = False,
    album: Annotated[bool, typer.Option("--album", help="take all inputs as one album (ReplayGain 2.0)")] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="files analysed in parallel processes")] = 1,
) -> None:
    """Measure BPM, key (+ Camelot) and EBU R128 loudness / ReplayGain of local files (opened read-only).

    The exit code is 1 when any file could not be analysed; the others are still reported.
    """
    from tqdm import tqdm

    from sidecar.analyzers.audio import audio_files
    from sidecar.analyzers.batch import analyze_paths
    from sidecar.analyzers.registry import CORE_ANALYZERS
    from sidecar.analyzers.summary import album_fields
    from sidecar.settings import get_settings

    files = list(audio_files(paths))
    if not files:
        typer.echo("no audio files found", err=True)
        raise typer.Exit(2)
    try:
        stream = analyze_paths(files, get_settings(), CORE_ANALYZERS, jobs=jobs)
        progress = tqdm(
            stream,
            total=len(files),
            unit="file",
            file=sys.stderr,
            disable=True if len(files) < _PROGRESS_MIN_FILES else None,
        )
        failed = False
        rows: list[dict[str, object]] = []
        analyses: list[TrackAnalysis] = []
        for analysis in progress:
            row = record(analysis)
            failed = failed or "error" in row or "errors" in row
            if json_lines and not album:
                progress.write(json.dumps(row), file=sys.stdout)
            else:
                rows.append(row)
                analyses.append(analysis)
    except FatalAnalyzerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if album:
        fields = album_fields(_album(analyses))
        for row in rows:
            if "error" not in row:
                row.update(fields)
    if json_lines:
        for row in rows:
            typer.echo(json.dumps(row))
    elif rows:
        typer.echo(_table(rows, album=album))
    if failed:
        raise typer.Exit(1)
