"""``sonantica demo``: generate a small library with known tempo and key, analyse it, and show the result."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from tqdm import tqdm

from sidecar.analyzers.batch import analyze_paths
from sidecar.analyzers.registry import CORE_ANALYZERS
from sidecar.analyzers.summary import summarize
from sidecar.cli.app import app
from sidecar.demo.evaluation import mirex_key_score, tempo_within
from sidecar.demo.library import demo_library
from sidecar.settings import get_settings


@app.command()
def demo(
    tracks: Annotated[int, typer.Option(min=1, help="tracks in the generated library")] = 30,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="parallel analysis processes")] = 2,
) -> None:
    """Render a demo library (tagged, several formats) under the data directory and analyse it."""
    settings = get_settings()
    root = settings.data_dir / "demo" / "library"
    typer.echo(f"demo library: {root}", err=True)
    library = demo_library(root, n_tracks=tracks)
    paths = [t.path for t in library]
    stream = analyze_paths(paths, settings, CORE_ANALYZERS, jobs=jobs)
    typer.echo(f"{'track':44}  {'true':>14}  {'BPM':>6}  {'key':>9}  {'Camelot':>7}  {'LUFS':>6}  {'RG dB':>6}")
    tempo_hits = key_score = 0.0
    for track, analysis in zip(library, tqdm(stream, total=len(paths), unit="track", file=sys.stderr), strict=True):
        s = summarize(analysis.info, analysis.results, duration_s=analysis.decoded_duration_s)
        result = analysis.results.get("key")
        estimate = getattr(result, "key", None)
        tempo_hits += tempo_within(s["bpm"] if isinstance(s["bpm"], float) else None, track.spec.bpm)
        key_score += mirex_key_score(estimate, track.spec.key)
        truth = f"{track.spec.bpm:.0f} {track.spec.key.camelot}"
        name = f"{track.artist} / {track.path.name}"[:44]
        typer.echo(
            f"{name:44}  {truth:>14}  {s['bpm'] or '-':>6}  {s['key'] or '-':>9}  {s['camelot'] or '-':>7}"
            f"  {s['loudness_lufs'] or '-':>6}  {s['replaygain_track_gain_db'] or '-':>6}"
        )
    typer.echo(
        f"tempo within 4%: {tempo_hits / len(library):.0%}   key MIREX score: {key_score / len(library):.2f}"
        f"   ({len(library)} tracks)"
    )
