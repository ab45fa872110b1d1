"""Tempo (and key) accuracy on the rhythm corpus with leave-one-style-out validation, peers in the same run.

The corpus (:mod:`sidecar.demo.rhythm_corpus`): 15 style families with patterns of their own, rendered with four
General MIDI soundfonts, truth = the notated beat. sonantica's tempo analyzer has one fitted part, the octave model
(``sidecar.analyzers.tempo.fit_octave``). For every family the model is fitted on all the *other* families and
scored on the left-out one, so a cue that only works when its family was in the fitting set shows up as a bad
left-out family. The same is done per soundfont (leave-one-soundfont-out). The shipped weights
(``OctaveModel.default()``) are scored as well, but they were fitted on this whole corpus: that row is in-sample
and is not a result.

Peers on the same clips: librosa defaults (``librosa.beat.beat_track(y=, sr=)`` on the decoded 22050 Hz mono) and
Essentia ``RhythmExtractor2013(method="multifeature")`` on the file at 44.1 kHz (Essentia is a benchmark-only
dependency: ``pip install -e '.[bench]'``). Their estimates are cached in ``<cache>/tempo-peers.json``.

Octave cue sets (``--cues``, default ``v2,harmony``), each fitted per fold the same way: ``v2``, the onset envelopes
(the default analyzer's cues), ``harmony``, those plus the chroma and bass change envelopes
(:mod:`sidecar.analyzers.tempo_harmony`), and ``v3``, the onset envelopes plus BeatNet's beat and downbeat activations
(``--beatnet-model``). ``--one-chord-a-bar`` scores the corpus of generator version 1 (one chord a bar everywhere)
instead of the one with drawn harmonic rhythms.

Key: sonantica's key analyzer on the same clips, MIREX weighted score.

Usage (from the repository root)::

    python -m scripts.bench_tempo --fetch-soundfonts --render-only   # once: soundfonts from Debian, render clips
    python -m scripts.bench_tempo                                     # 15 families x 12 clips x 24 s
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import numpy.typing as npt

from sidecar.analyzers.audio import ANALYSIS_RATE_HZ, AudioReader
from sidecar.analyzers.key import KeyAnalyzer
from sidecar.analyzers.tempo import (
    DEFAULT_NETWORK_WINDOW_S,
    ClipFeatures,
    TempoAnalyzer,
    clip_features,
    fit_octave,
    mono_envelopes,
)
from sidecar.demo import rhythm_corpus as rc
from sidecar.demo.evaluation import mirex_key_score, tempo_within, tempo_within_bpm, tempo_within_octave
from sidecar.domain import KeySignature

PEER_CACHE_VERSION = 1
CUE_SETS: dict[str, tuple[bool, bool]] = {"v2": (False, False), "harmony": (False, True), "v3": (True, False)}
"""Octave cue sets the benchmark can score, and whether each reads (the beat network, the harmony envelopes):
``v2`` the five onset envelopes (tempo version 2), ``harmony`` those plus the chroma and bass change envelopes,
``v3`` the onset envelopes plus BeatNet's beat and downbeat activations."""
DEFAULT_CUE_SETS = "v2,harmony"
ESSENTIA = "Essentia multifeature"
ESSENTIA_KEY = "Essentia KeyExtractor"


@dataclass(eq=False)
class Item:
    """One clip with everything measured on it."""

    clip: rc.RhythmClip
    path: Path
    features: dict[str, ClipFeatures]
    key: KeySignature | None
    estimates: dict[str, float | None] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)
    alternative: dict[str, float | None] = field(default_factory=dict)
    peer_key: KeySignature | None = None


def _decode(path: Path) -> tuple[npt.NDArray[np.float32], KeySignature | None]:
    """Mono 22050 Hz signal and sonantica's key, from one pass over the decoded blocks."""
    session = KeyAnalyzer().start(None)  # type: ignore[arg-type]  # the key session does not read the info
    blocks = []
    with AudioReader(path) as reader:
        for block in reader.blocks():
            session.feed(block)
            blocks.append(block.mono)
    return np.concatenate(blocks), session.finish().key


def librosa_beat_track(path: Path, mono: npt.NDArray[np.float32]) -> float | None:
    bpm, _ = librosa.beat.beat_track(y=mono, sr=ANALYSIS_RATE_HZ)
    value = float(np.atleast_1d(bpm)[0])
    return value if value > 0 else None


def essentia_peers() -> dict[str, Callable[[Path, npt.NDArray[np.float32]], Any]]:
    """Essentia's tempo and key peers (empty when Essentia is not installed)."""
    try:
        import essentia  # type: ignore[import-untyped,import-not-found,unused-ignore]  # bench extra
        import essentia.standard as es  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return {}
    essentia.log.infoActive = False
    essentia.log.warningActive = False  # one "No network created" line per call otherwise
    rhythm = es.RhythmExtractor2013(method="multifeature")
    key_extractor = es.KeyExtractor()

    def tempo(path: Path, mono: npt.NDArray[np.float32]) -> float | None:
        bpm = float(rhythm(es.MonoLoader(filename=str(path), sampleRate=44100)())[0])
        return bpm if bpm > 0 else None

    def key(path: Path, mono: npt.NDArray[np.float32]) -> str:
        tonic, scale, _ = key_extractor(es.MonoLoader(filename=str(path), sampleRate=44100)())
        return f"{tonic} {scale}"

    return {ESSENTIA: tempo, ESSENTIA_KEY: key}


def _tempo_from_git(revision: str) -> Callable[[Path, npt.NDArray[np.float32]], float | None]:
    """The tempo analyzer as it was at ``revision`` (e.g. tempo v1, ``409a341``), loaded from git history."""
    source = subprocess.run(
        ["git", "show", f"{revision}:sidecar/analyzers/tempo.py"], check=True, capture_output=True, text=True
    ).stdout
    module = types.ModuleType(f"tempo_at_{revision}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{revision}:sidecar/analyzers/tempo.py", "exec"), module.__dict__)
    analyzer = module.TempoAnalyzer()

    def run(path: Path, mono: npt.NDArray[np.float32]) -> float | None:
        stream = module.OnsetEnvelopeStream(accent_max_hz=analyzer.settings.accent_max_hz)
        stream.feed(mono)
        bpm: float | None = module.estimate_tempo(stream.envelopes(), analyzer.settings).bpm
        return bpm

    return run


def _load_peer_cache(path: Path) -> dict[str, Any]:
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text())
        if data.get("version") == PEER_CACHE_VERSION:
            return data
    return {"version": PEER_CACHE_VERSION, "estimates": {}}


def _acc(items: Sequence[Item], method: str) -> tuple[float, float, float]:
    """Acc1, Acc2 and the share within 0.5 BPM of ``method`` over ``items``."""
    if not items:
        return float("nan"), float("nan"), float("nan")
    est = [(i.estimates.get(method), i.clip.bpm) for i in items]
    return (
        float(np.mean([tempo_within(e, t) for e, t in est])),
        float(np.mean([tempo_within_octave(e, t) for e, t in est])),
        float(np.mean([tempo_within_bpm(e, t) for e, t in est])),
    )


def _fmt(values: tuple[float, float, float]) -> str:
    return " | ".join(f"{v:5.3f}" for v in values)


def _leave_one_out(items: Sequence[Item], group: Callable[[Item], str], cues: str, method: str) -> dict[str, float]:
    """Fit the octave model on the ``cues`` cue set without each group, estimate that group's clips into
    ``item.estimates[method]``; returns fit time per fold (s)."""
    fit_s = {}
    for name in sorted({group(i) for i in items}):
        train = [(i.features[cues], i.clip.bpm) for i in items if group(i) != name]
        start = time.perf_counter()
        analyzer = TempoAnalyzer(octave_model=fit_octave(train))
        fit_s[name] = time.perf_counter() - start
        for item in items:
            if group(item) == name:
                result = analyzer.estimate(item.features[cues])
                item.estimates[method] = result.bpm
                item.confidence[method] = result.bpm_confidence
                item.alternative[method] = result.bpm_alternative
    return fit_s


def _ratio(estimate: float | None, truth: float) -> str:
    if estimate is None:
        return "none"
    ratio = estimate / truth
    for label, value in (("x2", 2), ("x1/2", 0.5), ("x3", 3), ("x1/3", 1 / 3), ("x3/2", 1.5), ("x2/3", 2 / 3)):
        if abs(ratio / value - 1) <= 0.04:
            return label
    return f"x{ratio:.2f}"


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    """The rhythm corpus options of every benchmark that scores it (this one and ``bench_key_rhythm``)."""
    parser.add_argument("--clips-per-family", type=int, default=12)
    parser.add_argument("--duration-s", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--soundfonts", default=",".join(rc.SOUNDFONT_NAMES), help="comma-separated names")
    parser.add_argument("--cache-dir", type=Path, default=rc.DEFAULT_CACHE_DIR)
    parser.add_argument(
        "--one-chord-a-bar",
        action="store_true",
        help="the corpus of generator version 1 (one chord a bar everywhere) instead of drawn harmonic rhythms",
    )


def soundfont_names(args: argparse.Namespace) -> list[str]:
    return [n for n in args.soundfonts.split(",") if n]


def corpus_clips(args: argparse.Namespace) -> list[rc.RhythmClip]:
    """The clips :func:`add_corpus_arguments`' options ask for (printed in one line)."""
    harmony = ((1.0, 1.0),) if args.one_chord_a_bar else rc.HARMONIC_RHYTHMS
    clips = rc.rhythm_corpus(
        args.clips_per_family,
        soundfonts=soundfont_names(args),
        duration_s=args.duration_s,
        seed=args.seed,
        harmonic_rhythms=harmony,
    )
    print(
        f"corpus: {len(clips)} clips x {args.duration_s:g} s, {len(rc.FAMILIES)} families, seed {args.seed}, "
        f"harmonic rhythm (chords per bar, probability) {harmony}"
    )
    return clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_corpus_arguments(parser)
    parser.add_argument("--fetch-soundfonts", action="store_true", help="extract missing Debian soundfonts first")
    parser.add_argument("--render-only", action="store_true", help="render the corpus into the cache and stop")
    parser.add_argument("--no-essentia", action="store_true", help="skip Essentia even when it is installed")
    parser.add_argument("--before", default="409a341", help="git revision of the tempo analyzer to compare ('': none)")
    parser.add_argument(
        "--beatnet-model", type=int, default=1, choices=(1, 2, 3), help="BeatNet model the v3 cues read (default 1)"
    )
    parser.add_argument(
        "--cues",
        default=DEFAULT_CUE_SETS,
        help=f"comma-separated octave cue sets to score: {', '.join(CUE_SETS)} (default {DEFAULT_CUE_SETS})",
    )
    args = parser.parse_args()

    names = soundfont_names(args)
    if args.fetch_soundfonts:
        rc.fetch_soundfonts(args.cache_dir)
    found, missing = rc.find_soundfonts(names, cache_dir=args.cache_dir)
    for name, path in found.items():
        print(f"soundfont {name}: {path}")
    if missing:
        raise SystemExit("missing soundfonts:\n  " + "\n  ".join(missing))
    clips = corpus_clips(args)
    start = time.perf_counter()
    paths = rc.cached_clip_paths(clips, args.cache_dir)
    print(f"rendered/cached in {time.perf_counter() - start:.1f} s under {args.cache_dir / 'rhythm'}", flush=True)
    if args.render_only:
        return

    runners: dict[str, Callable[[Path, npt.NDArray[np.float32]], Any]] = {"librosa beat_track": librosa_beat_track}
    essentia = {} if args.no_essentia else essentia_peers()
    if not essentia and not args.no_essentia:
        print("Essentia is not installed (pip install -e '.[bench]'): its columns are left out")
    runners.update(essentia)
    before = f"sonantica at {args.before} (no fitted parameters)"
    if args.before:
        runners[before] = _tempo_from_git(args.before)
    peers = [name for name in runners if name != ESSENTIA_KEY]
    peer_cache_path = args.cache_dir / "tempo-peers.json"
    peer_cache = _load_peer_cache(peer_cache_path)

    cue_sets = [c for c in args.cues.split(",") if c]
    if unknown := set(cue_sets) - set(CUE_SETS):
        raise SystemExit(f"unknown cue sets: {sorted(unknown)}")
    with_network = any(CUE_SETS[c][0] for c in cue_sets)
    with_harmony = any(CUE_SETS[c][1] for c in cue_sets)
    items: list[Item] = []
    feature_s: list[float] = []
    for n, (clip, path) in enumerate(zip(clips, paths, strict=True)):
        mono, key = _decode(path)
        t0 = time.perf_counter()
        envelopes = mono_envelopes(
            mono,
            network_window_s=DEFAULT_NETWORK_WINDOW_S if with_network else None,
            beatnet_model=args.beatnet_model,
            harmony=with_harmony,
        )
        features = {
            cues: clip_features(envelopes, network=CUE_SETS[cues][0], harmony=CUE_SETS[cues][1]) for cues in cue_sets
        }
        feature_s.append(time.perf_counter() - t0)
        item = Item(clip, path, features, key)
        cached = peer_cache["estimates"].setdefault(clip.digest(), {})
        for peer, run in runners.items():
            if peer == before:
                item.estimates[peer] = run(path, mono)  # not cached: the revision may be any
                continue
            if peer not in cached:
                cached[peer] = run(path, mono)
            if peer == ESSENTIA_KEY:
                item.peer_key = KeySignature.parse(cached[peer])
            else:
                item.estimates[peer] = cached[peer]
        items.append(item)
        if (n + 1) % 30 == 0:
            print(f"  {n + 1}/{len(clips)} clips analysed", flush=True)
            peer_cache_path.write_text(json.dumps(peer_cache))
    peer_cache_path.write_text(json.dumps(peer_cache))

    shipped = TempoAnalyzer()
    model = shipped.settings.octave_model
    shipped_cues = next(c for c in CUE_SETS if CUE_SETS[c] == (model.uses_network, model.uses_harmony))
    lofo = {cues: f"sonantica {cues} (leave-one-family-out)" for cues in cue_sets}
    loso = {cues: f"sonantica {cues} (leave-one-soundfont-out)" for cues in cue_sets}
    # The shipped cue set's leave-one-family-out run is the one the misses and confidence sections describe.
    sonantica = lofo[shipped_cues] if shipped_cues in lofo else lofo[cue_sets[0]]
    fit_s: dict[str, float] = {}
    for cues in cue_sets:
        fit_s |= {f"{cues} {k}": v for k, v in _leave_one_out(items, lambda i: i.clip.family, cues, lofo[cues]).items()}
        _leave_one_out(items, lambda i: i.clip.soundfont, cues, loso[cues])
    methods = [m for cues in cue_sets for m in (lofo[cues], loso[cues])]
    if shipped_cues in cue_sets:
        in_sample = f"sonantica shipped weights, {shipped_cues} (in-sample)"
        for item in items:
            result = shipped.estimate(item.features[shipped_cues])
            item.estimates[in_sample] = result.bpm
            item.confidence["shipped"] = result.bpm_confidence
            item.alternative["shipped"] = result.bpm_alternative
        methods.append(in_sample)
    methods += peers

    print(f"\n## Overall: {len(items)} clips (Acc1 within 4 %, Acc2 also x2 x3 x1/2 x1/3, within 0.5 BPM)")
    print("| method | Acc1 | Acc2 | within 0.5 BPM |\n|---|---|---|---|")
    for method in methods:
        print(f"| {method} | {_fmt(_acc(items, method))} |")

    print("\n## Per left-out family: Acc1 / Acc2 / within 0.5 BPM (sonantica fitted without that family)")
    short = [*lofo.values(), *peers]
    print("| family | n | patterns | BPM | " + " | ".join(short) + " |\n|---|---|---|---|" + "---|" * len(short))
    worst: dict[str, tuple[float, str]] = {m: (2.0, "") for m in lofo.values()}
    for family in rc.FAMILIES:
        members = [i for i in items if i.clip.family == family]
        tempos = [i.clip.bpm for i in members]
        cells = [" / ".join(f"{v:4.2f}" for v in _acc(members, m)) for m in short]
        for method in lofo.values():
            worst[method] = min(worst[method], (_acc(members, method)[0], family))
        n_patterns = len({i.clip.pattern for i in members})
        print(
            f"| {family} | {len(members)} | {n_patterns} | {min(tempos):g}-{max(tempos):g} | "
            + " | ".join(cells)
            + " |"
        )
    for method, (acc1, family) in worst.items():
        print(f"- worst left-out family, {method} Acc1: {family} {acc1:.3f}")

    print("\n## Per soundfont: Acc1 / Acc2 / within 0.5 BPM")
    by_font = [*loso.values(), *lofo.values(), *peers]
    print("| soundfont | n | " + " | ".join(by_font) + " |\n|---|---|" + "---|" * len(by_font))
    for name in names:
        members = [i for i in items if i.clip.soundfont == name]
        cells = [" / ".join(f"{v:4.2f}" for v in _acc(members, m)) for m in by_font]
        print(f"| {name} | {len(members)} | " + " | ".join(cells) + " |")

    for method in [sonantica, *(m for m in lofo.values() if m != sonantica)]:
        _misses(items, method)
    for method in lofo.values():
        _confidence_report(items, method)

    print("\n## Key (sonantica key analyzer), MIREX weighted score / exact")
    scores = [mirex_key_score(i.key, i.clip.key) for i in items]
    print(f"- all {len(items)} clips: MIREX {np.mean(scores):.3f}, exact {np.mean([s == 1.0 for s in scores]):.3f}")
    if ESSENTIA_KEY in runners:
        peer_scores = [mirex_key_score(i.peer_key, i.clip.key) for i in items]
        print(f"- {ESSENTIA_KEY} (defaults), same clips: MIREX {np.mean(peer_scores):.3f}")
    print("| family / soundfont | sonantica MIREX | exact | Essentia MIREX |\n|---|---|---|---|")
    groups = [(f, [i for i in items if i.clip.family == f]) for f in rc.FAMILIES]
    groups += [(n, [i for i in items if i.clip.soundfont == n]) for n in names]
    for label, fam in groups:
        own = [mirex_key_score(i.key, i.clip.key) for i in fam]
        peer_key = [mirex_key_score(i.peer_key, i.clip.key) for i in fam] if ESSENTIA_KEY in runners else []
        peer_cell = f"{np.mean(peer_key):.3f}" if peer_key else "-"
        print(f"| {label} | {np.mean(own):.3f} | {np.mean([s == 1.0 for s in own]):.3f} | {peer_cell} |")
    wrong = [i for i in items if i.key != i.clip.key]
    for item in wrong:
        print(f"  key miss: {item.clip.title}: {item.key.name if item.key else None}")

    print(
        f"\n- time: features {statistics.median(feature_s) * 1000:.0f} ms per {args.duration_s:g} s clip (median);"
        f" octave fit {statistics.median(fit_s.values()):.2f} s per fold (median)"
    )


def _misses(items: Sequence[Item], method: str) -> None:
    misses = [i for i in items if not tempo_within(i.estimates[method], i.clip.bpm)]
    print(f"\n## {method} misses: {len(misses)}")
    print("| clip | harmonic rhythm | estimate | ratio | confidence | alternative |\n|---|---|---|---|---|---|")
    for item in misses:
        alt = item.alternative.get(method)
        print(
            f"| {item.clip.title} | {item.clip.chords_per_bar:g} chords/bar | {item.estimates[method]} "
            f"| {_ratio(item.estimates[method], item.clip.bpm)} | {item.confidence.get(method, 0.0):.3f} "
            f"| {alt if alt is not None else '-'} |"
        )


def _confidence_report(items: Sequence[Item], method: str) -> None:
    """Is ``bpm_confidence`` meaningful: accuracy above and below the alternative threshold, and how often the
    alternative holds the truth when the estimate misses."""
    low = [i for i in items if i.alternative.get(method) is not None]
    high = [i for i in items if i.alternative.get(method) is None]
    print(f"\n## Confidence ({method})")
    for label, group in (("with bpm_alternative (low confidence)", low), ("without (confident)", high)):
        if group:
            print(f"- {label}: {len(group)} clips, Acc1 {_acc(group, method)[0]:.3f}")
    rescued = [
        i
        for i in low
        if not tempo_within(i.estimates[method], i.clip.bpm) and tempo_within(i.alternative[method], i.clip.bpm)
    ]
    print(f"- misses whose bpm_alternative is the truth: {len(rescued)}")


if __name__ == "__main__":
    main()
