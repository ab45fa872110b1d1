"""Tempo accuracy and speed on the ground-truth corpus: Sonántica's tempo analyzer against librosa's defaults.

Renders (once, cached as FLAC) ``--pieces`` pieces of ``--duration-s`` seconds plus ``--long-pieces`` pieces of
``--long-duration-s`` seconds, decodes each to the analysis blocks, and prints Acc1 (within 4 %), Acc2 (octave
errors forgiven), within 0.5 BPM, a per-groove breakdown and the time per track for

- ``sonantica``: :class:`sidecar.analyzers.tempo.TempoAnalyzer` fed the decoded mono blocks (tempo + beats);
- ``librosa tempo``: ``librosa.feature.tempo(y=mono, sr=22050)`` with its defaults;
- ``librosa beat_track``: ``librosa.beat.beat_track(y=mono, sr=22050)`` with its defaults (tempo + beats).

Decoding is not timed. The long pieces are timed as the median of ``--repeats`` runs. Last, the first long piece's
decoded blocks are fed over and over as one ``--mix-hours`` mix: time and peak traced memory (``tracemalloc``,
which sees numpy's buffers) of the analyzer, to show memory does not grow with the audio.

Usage::

    python -m scripts.bench_tempo --pieces 96 --duration-s 30 --long-pieces 4 --long-duration-s 240 --mix-hours 3
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import numpy.typing as npt

from sidecar.analyzers.audio import ANALYSIS_RATE_HZ, AudioBlock, AudioReader
from sidecar.analyzers.tempo import TempoAnalyzer
from sidecar.demo.evaluation import tempo_within, tempo_within_bpm, tempo_within_octave
from sidecar.demo.library import cached_corpus
from sidecar.demo.music import GROOVES, PieceSpec, tempo_key_corpus
from sidecar.domain import AudioInfo

METHODS = ("sonantica", "librosa tempo", "librosa beat_track")


@dataclass(eq=False)
class Track:
    spec: PieceSpec
    info: AudioInfo
    blocks: list[AudioBlock]

    @property
    def mono(self) -> npt.NDArray[np.float32]:
        return np.concatenate([block.mono for block in self.blocks])


def _decode(spec: PieceSpec, path: Path) -> Track:
    with AudioReader(path) as reader:
        return Track(spec, reader.info, list(reader.blocks()))


def _sonantica(analyzer: TempoAnalyzer) -> Callable[[Track], float | None]:
    def run(track: Track) -> float | None:
        session = analyzer.start(track.info)
        for block in track.blocks:
            session.feed(block)
        return session.finish().bpm

    return run


def _librosa_tempo(track: Track) -> float | None:
    return float(librosa.feature.tempo(y=track.mono, sr=ANALYSIS_RATE_HZ)[0])


def _librosa_beat_track(track: Track) -> float | None:
    bpm, _ = librosa.beat.beat_track(y=track.mono, sr=ANALYSIS_RATE_HZ)
    return float(np.atleast_1d(bpm)[0])


def _timed(run: Callable[[Track], float | None], track: Track, repeats: int) -> tuple[float | None, float]:
    """The estimate and the median wall time (s) of ``repeats`` runs."""
    times = []
    bpm = None
    for _ in range(repeats):
        start = time.perf_counter()
        bpm = run(track)
        times.append(time.perf_counter() - start)
    return bpm, statistics.median(times)


def _scores(rows: list[tuple[PieceSpec, float | None]]) -> str:
    acc1 = np.mean([tempo_within(bpm, spec.bpm) for spec, bpm in rows])
    acc2 = np.mean([tempo_within_octave(bpm, spec.bpm) for spec, bpm in rows])
    half = np.mean([tempo_within_bpm(bpm, spec.bpm) for spec, bpm in rows])
    return f"{acc1:5.3f} | {acc2:5.3f} | {half:5.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pieces", type=int, default=96)
    parser.add_argument("--duration-s", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--long-pieces", type=int, default=4)
    parser.add_argument("--long-duration-s", type=float, default=240.0)
    parser.add_argument("--repeats", type=int, default=5, help="timing runs per long piece (median)")
    parser.add_argument("--mix-hours", type=float, default=3.0, help="length of the repeated-blocks mix (h)")
    parser.add_argument("--cache-dir", type=Path, default=Path("bench-data/corpus"))
    args = parser.parse_args()

    specs = tempo_key_corpus(args.pieces, duration_s=args.duration_s, seed=args.seed)
    long_specs = tempo_key_corpus(args.long_pieces, duration_s=args.long_duration_s, seed=args.seed + 1)
    print(f"rendering/caching {len(specs) + len(long_specs)} pieces in {args.cache_dir} ...", flush=True)
    tracks = [_decode(s, p) for s, p in zip(specs, cached_corpus(specs, args.cache_dir), strict=True)]
    long_tracks = [_decode(s, p) for s, p in zip(long_specs, cached_corpus(long_specs, args.cache_dir), strict=True)]

    analyzer = TempoAnalyzer()
    analyzer.check()  # compiles librosa's numba beat tracker before anything is timed
    runners = {"sonantica": _sonantica(analyzer), "librosa tempo": _librosa_tempo}
    runners["librosa beat_track"] = _librosa_beat_track
    for run in runners.values():
        run(tracks[0])

    estimates: dict[str, list[tuple[PieceSpec, float | None]]] = {m: [] for m in METHODS}
    seconds: dict[str, list[float]] = {m: [] for m in METHODS}
    short_seconds: dict[str, list[float]] = {m: [] for m in METHODS}
    for track in tracks + long_tracks:
        is_long = track in long_tracks
        for method, run in runners.items():
            bpm, elapsed = _timed(run, track, args.repeats if is_long else 1)
            estimates[method].append((track.spec, bpm))
            (seconds if is_long else short_seconds)[method].append(elapsed)
            if method == "sonantica" and not tempo_within_bpm(bpm, track.spec.bpm):
                print(f"  sonantica outside 0.5 BPM: {track.spec.title}: {bpm}")

    n_short = len(tracks)
    print(f"\n## Accuracy: {n_short} pieces x {args.duration_s:g} s (seed {args.seed})")
    print("| method | Acc1 | Acc2 | within 0.5 BPM |\n|---|---|---|---|")
    for method in METHODS:
        print(f"| {method} | {_scores(estimates[method][:n_short])} |")

    print("\n## Per groove: Acc1 / within 0.5 BPM")
    print("| groove | n | " + " | ".join(METHODS) + " |\n|---|---|" + "---|" * len(METHODS))
    for groove in GROOVES:
        n = sum(1 for t in tracks if t.spec.groove == groove)
        if n == 0:
            continue
        cells = []
        for method in METHODS:
            rows = [(spec, bpm) for spec, bpm in estimates[method][:n_short] if spec.groove == groove]
            acc1 = np.mean([tempo_within(bpm, spec.bpm) for spec, bpm in rows])
            half = np.mean([tempo_within_bpm(bpm, spec.bpm) for spec, bpm in rows])
            cells.append(f"{acc1:4.2f} / {half:4.2f}")
        print(f"| {groove} | {n} | " + " | ".join(cells) + " |")

    print(f"\n## Long pieces: {len(long_tracks)} x {args.long_duration_s:g} s (seed {args.seed + 1})")
    print("| piece | " + " | ".join(METHODS) + " |\n|---|" + "---|" * len(METHODS))
    for i, track in enumerate(long_tracks):
        cells = []
        for method in METHODS:
            bpm = estimates[method][n_short + i][1]
            cells.append(f"{bpm:.2f} BPM, {seconds[method][i]:.3f} s" if bpm is not None else "none")
        print(f"| {track.spec.title} | " + " | ".join(cells) + " |")

    print(f"\n## Time per track (median; each {args.long_duration_s:g} s piece itself a median of {args.repeats} runs)")
    print(f"| method | {args.duration_s:g} s piece | {args.long_duration_s:g} s piece |\n|---|---|---|")
    for method in METHODS:
        short_s, long_s = statistics.median(short_seconds[method]), statistics.median(seconds[method])
        print(f"| {method} | {short_s:.3f} s | {long_s:.3f} s |")
    decode_s = []
    for track in long_tracks:
        start = time.perf_counter()
        _decode(track.spec, cached_corpus([track.spec], args.cache_dir)[0])
        decode_s.append(time.perf_counter() - start)
    print(f"- decoding alone (FLAC -> blocks, for reference): {statistics.median(decode_s):.3f} s")
    _mix(analyzer, long_tracks[0], args.mix_hours)


def _mix(analyzer: TempoAnalyzer, track: Track, hours: float) -> None:
    """Feed ``track``'s blocks over and over for ``hours``: wall time, then peak traced memory in a second run."""
    repeats = max(1, round(hours * 3600.0 / track.spec.duration_s))
    mix = Track(track.spec, track.info, track.blocks * repeats)
    audio_mb = sum(block.mono.nbytes for block in mix.blocks) / 1e6
    bpm, elapsed = _timed(_sonantica(analyzer), mix, 1)
    tracemalloc.start()
    _sonantica(analyzer)(mix)
    _, peak_bytes = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"\n## Mix: {track.spec.title} repeated {repeats} times ({repeats * track.spec.duration_s / 3600:.2f} h)")
    print(f"- sonantica: {bpm} BPM in {elapsed:.2f} s; peak traced memory {peak_bytes / 1e6:.1f} MB")
    print(f"- (the mono signal itself would be {audio_mb:.0f} MB as float32; it is never held)")


if __name__ == "__main__":
    main()
