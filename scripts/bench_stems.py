"""Stems benchmark: real-time factor and peak memory of a separation with the ``htdemucs`` architecture, and disk
per minute of stems as FLAC and as Opus.

The published weights cannot be downloaded here, so the model is ``demucs.htdemucs.HTDemucs`` built with the
released ``htdemucs`` hyper-parameters (4 sources, 48 channels, depth 4, nfft 4096, 512 bottom channels, 5
cross-transformer layers, 7.8 s segments) and random weights: the same architecture and the same compute per second
of audio. It is saved into a local Demucs repository and loaded through the sidecar's own loader, then run through
the sidecar's block-wise separation (``stems.block_s``, ``stems.overlap``), exactly what a worker runs.

Each track length is separated in a fresh process, so its peak RSS (``ru_maxrss``) is that separation's alone.

Run: ``.venv/bin/python -m scripts.bench_stems`` (defaults: ``--minutes 4,10``; ``--threads N`` for torch's
threads; ``--device cuda`` where a GPU is lent). Prints one Markdown table. On a shared machine the wall-clock
real-time factor depends on the load; the CPU time per second of audio (with ``--threads 1``) depends much less.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from sidecar.demo.encode import write_audio
from sidecar.demo.music import SAMPLE_RATE_HZ, PieceSpec, render
from sidecar.domain import KeySignature
from sidecar.settings import Settings
from sidecar.stems import STEM_NAMES
from sidecar.stems.codec import StemWriter, stereo_blocks

CACHE = Path(".bench-cache")
MODEL = "htdemucs_random"


def track(minutes: float) -> Path:
    """A stereo 44.1 kHz FLAC of ``minutes`` minutes (a rendered 5-minute piece, repeated), cached."""
    path = CACHE / f"stems-{minutes:g}min.flac"
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        spec = PieceSpec(title="s", bpm=118.0, key=KeySignature("G", "minor"), groove="rock", duration_s=300.0, seed=9)
        piece = render(spec)
        samples = np.tile(piece, (int(np.ceil(minutes * 60 / 300.0)), 1))[: int(minutes * 60 * SAMPLE_RATE_HZ)]
        partial = path.with_suffix(".partial.flac")
        write_audio(samples, SAMPLE_RATE_HZ, partial)
        partial.replace(path)
    return path


def repository(folder: Path) -> Path:
    """A local Demucs repository holding an ``htdemucs``-architecture model with random weights."""
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    model = HTDemucs(sources=["drums", "bass", "other", "vocals"], bottom_channels=512, segment=Fraction(39, 5))
    args, kwargs = model._init_args_kwargs
    buffer = io.BytesIO()
    torch.save({"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": model.state_dict()}, buffer)
    data = buffer.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"0000beef-{hashlib.sha256(data).hexdigest()[:8]}.th").write_bytes(data)
    (folder / f"{MODEL}.yaml").write_text("models: ['0000beef']\n", encoding="utf-8")
    return folder


def separate_once(source: Path, out_dir: Path, repo: Path, device: str, threads: int | None) -> dict[str, object]:
    """Child process: load the model as a worker does, separate ``source``, report time and peak RSS."""
    import torch

    from sidecar.stems.executor import config_from_settings
    from sidecar.stems.models import load_model
    from sidecar.stems.separate import separate_file

    if threads is not None:
        torch.set_num_threads(threads)
    settings = Settings(stems={"model": MODEL, "repo": repo, "device": device})
    started = time.perf_counter()
    model = load_model(settings)
    loaded_s = time.perf_counter() - started
    started = time.perf_counter()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    result = separate_file(str(source), out_dir, model, config_from_settings(settings))
    elapsed_s = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {
        "duration_s": result.duration_s,
        "elapsed_s": elapsed_s,
        "cpu_s": cpu_s,
        "load_s": loaded_s,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "files": result.files,
        "threads": torch.get_num_threads(),
        "parameters_m": sum(p.numel() for m in model.models for p in m.parameters()) / 1e6,
    }


def opus_bytes(flac_dir: Path, out_dir: Path, bitrate_kbps: int) -> int:
    """Size of the same stems encoded as the worker would with ``SONANTICA_STEMS__FORMAT=opus``."""
    total = 0
    for name in STEM_NAMES:
        target = out_dir / f"{name}.opus"
        with StemWriter(target, "opus", 44100, opus_bitrate_kbps=bitrate_kbps) as writer:
            for block in stereo_blocks(str(flac_dir / f"{name}.flac"), 44100):
                writer.write(block)
        total += target.stat().st_size
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", default="4,10", help="track lengths to separate, comma-separated")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--opus-kbps", type=int, default=96)
    parser.add_argument("--child", nargs=4, metavar=("SOURCE", "OUT", "REPO", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        source, out, repo, device = args.child
        print(json.dumps(separate_once(Path(source), Path(out), Path(repo), device, args.threads)))
        return
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = repository(Path(tmp) / "repo")
        for minutes in [float(m) for m in args.minutes.split(",")]:
            source = track(minutes)
            out = Path(tmp) / f"out-{minutes:g}"
            out.mkdir()
            command = [sys.executable, "-m", "scripts.bench_stems", "--child", str(source), str(out), str(repo)]
            command += [args.device] + ([] if args.threads is None else ["--threads", str(args.threads)])
            load = os.getloadavg()[0]
            report = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            flac_total = sum(report["files"].values())
            opus_dir = Path(tmp) / f"opus-{minutes:g}"
            opus_dir.mkdir()
            opus_total = opus_bytes(out, opus_dir, args.opus_kbps)
            rows.append((minutes, report, flac_total, opus_total, source.stat().st_size, load, os.getloadavg()[0]))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, device {args.device}; load before {load_before}")
    print(f"model: htdemucs architecture, random weights ({rows[0][1]['parameters_m']:.1f} M parameters)")
    print()
    print(
        "| track | threads | separation (wall) | real-time factor (wall) | CPU time / track duration | peak RSS"
        " | FLAC stems / min | Opus stems / min | original FLAC / min | load 1-min (start / end) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for minutes, report, flac_total, opus_total, original, load_start, load_end in rows:
        rtf = report["elapsed_s"] / report["duration_s"]
        print(
            f"| {minutes:g} min | {report['threads']} | {report['elapsed_s']:.0f} s (+{report['load_s']:.1f} s load)"
            f" | {rtf:.2f} ({1 / rtf:.2f}x real time) | {report['cpu_s'] / report['duration_s']:.2f}"
            f" | {report['peak_rss_mib']:.0f} MiB"
            f" | {flac_total / minutes / 1e6:.1f} MB | {opus_total / minutes / 1e6:.2f} MB"
            f" | {original / minutes / 1e6:.1f} MB | {load_start:.1f} / {load_end:.1f} |"
        )


if __name__ == "__main__":
    main()
