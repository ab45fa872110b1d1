"""Key-finding variants of the default analyzer, each chosen and scored held out: percussive suppression before the
pitch histogram, a bass-register chroma, and other published key profiles.

Every clip's spectral peaks (the default analyzer's: G2-C7, -40 dB floor, 4096-sample Hann frames every 2048) are
found once, with two extra numbers per peak: its *prominence* (its magnitude over the median magnitude of the 17
bins around it in its frame: a drum's broadband noise has no prominent peaks) and its *harmonic share* (the soft
mask H^2 / (H^2 + P^2) of median-filter HPSS at its bin, H the median over 5 frames in time, P over 17 bins in
frequency). A variant is:

- a peak weighting: ``plain`` (the default analyzer), ``prominence>=R`` (only peaks at least R times the local
  median), ``hpss^p`` (amplitude times the harmonic share to the power p);
- a profile (Krumhansl-Kessler, Temperley, EDMA, Aarden-Essen, Bellman-Budge, Temperley-Kostka-Payne, Sha'ath),
  always with the analyzer's harmonic model (decay 0.6);
- a bass term: a second chroma of the peaks from G2 up to a cut (no register window), correlated with the same
  templates and added with weight w to the whole-register correlation;
- a key-signature step: the diatonic collection (major-scale set) holding most of the chroma, then its major key or
  relative minor by the profile; taken over the profile's own best key only when that key's score is within a margin
  of it (``within m``; no margin: always), and only when the best collection beats the runner-up collection by a gate
  (``if clear by g``).

Which variant a fold uses is chosen on the fold's fitting clips only (best mean MIREX, ties to the earlier variant
in ``variants()``, whose first entry is the default analyzer): leave-one-family-out (15 folds) and
leave-one-progression-out (8 folds, every clip of one of the generator's chord loops). The chosen variant of each
fold is listed. Restricted searches (profiles only, peak weighting only, bass only) show which direction carries the
gain. In-sample scores of single variants are printed for reference only (not a result). The same variants on the
demo corpus (``scripts/bench_key.py``'s dev and held-out sets) and the real recordings of the first set of
``scripts/bench_tempo_real.py`` (agreement with Essentia KeyExtractor, whose estimates ``bench_key_rhythm --real``
cached) are printed for the variants the folds chose. No key (the analyzer's gate on tonal evidence) is the default
analyzer's decision for every variant, so the variants differ only in which key they name.

Usage (from the repository root, after ``python -m scripts.bench_key_rhythm --real`` has cached the peers)::

    python -m scripts.bench_key_variants
    python -m scripts.bench_key_variants --time-only   # CPU time of the analyzer and of the HPSS medians, 4 min
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import numpy.typing as npt
import scipy.ndimage

from sidecar.analyzers.audio import ANALYSIS_RATE_HZ, AudioReader
from sidecar.analyzers.key import (
    EDMA,
    KRUMHANSL_KESSLER,
    SILENCE_DBFS,
    TEMPERLEY,
    ChromaSummary,
    KeyAnalyzer,
    KeyDecision,
    KeyProfile,
    decide_key,
    key_correlations,
    key_of_template,
    key_templates,
)
from sidecar.demo import rhythm_corpus as rc
from sidecar.demo.evaluation import mirex_key_score
from sidecar.demo.library import cached_corpus
from sidecar.demo.music import tempo_key_corpus
from sidecar.domain import KeySignature

Vector = npt.NDArray[np.float64]
FRAME, HOP = 4096, 2048
MIN_PITCH, MAX_PITCH = 43.0, 96.0

AARDEN_ESSEN = KeyProfile(
    "aarden-essen",
    (17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062, 0.145624, 8.15494, 0.232998, 4.95122),
    (18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161, 4.56621, 1.93186, 7.37619, 1.75623),
    "Aarden (2003), Essen folksong collection",
)
BELLMAN_BUDGE = KeyProfile(
    "bellman-budge",
    (16.80, 0.86, 12.95, 1.41, 13.49, 11.93, 1.25, 20.28, 1.80, 8.04, 0.62, 10.57),
    (18.16, 0.69, 12.99, 13.34, 1.07, 11.15, 1.38, 21.07, 7.49, 1.53, 0.92, 10.21),
    "Bellman (2005), chord-based profiles after Budge (1943)",
)
TEMPERLEY_KOSTKA_PAYNE = KeyProfile(
    "temperley-kostka-payne",
    (0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400),
    (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330),
    "Temperley (2007), Music and Probability (Kostka-Payne corpus)",
)
SHAATH = KeyProfile(
    "shaath",
    (6.6, 2.0, 3.5, 2.3, 4.6, 4.0, 2.5, 5.2, 2.4, 3.7, 2.3, 3.4),
    (6.5, 2.7, 3.5, 5.4, 2.6, 3.5, 2.5, 5.2, 4.0, 2.7, 4.3, 3.2),
    "Sha'ath (2011), KeyFinder",
)
PROFILES = (KRUMHANSL_KESSLER, TEMPERLEY, EDMA, AARDEN_ESSEN, BELLMAN_BUDGE, TEMPERLEY_KOSTKA_PAYNE, SHAATH)
TEMPLATES = {p.name: key_templates(p, harmonic_decay=0.6) for p in PROFILES}
WEIGHTINGS = ("plain", "prominence>=2", "prominence>=4", "prominence>=8", "hpss^1", "hpss^2")
BASS_CUTS = (50.0, 55.0, 60.0)
BASS_WEIGHTS = (0.25, 0.5, 1.0)


@dataclass(frozen=True)
class Variant:
    weighting: str
    profile: str
    bass_cut: float
    bass_weight: float
    signature_margin: float = 0.0
    signature_gate: float = 0.0

    @property
    def signature_first(self) -> bool:
        return self.signature_margin > 0.0

    @property
    def name(self) -> str:
        bass = f", bass<{self.bass_cut:g} x{self.bass_weight:g}" if self.bass_weight else ""
        margin = "" if math.isinf(self.signature_margin) else f" within {self.signature_margin:g}"
        gate = f" if clear by {self.signature_gate:g}" if self.signature_gate else ""
        first = f"signature first{margin}{gate}, " if self.signature_first else ""
        return f"{first}{self.weighting}, {self.profile}{bass}"


DEFAULT = Variant("plain", KRUMHANSL_KESSLER.name, 0.0, 0.0)
SIGNATURE_FIRST = Variant("plain", KRUMHANSL_KESSLER.name, 0.0, 0.0, math.inf)
SIGNATURE_MARGINS = (0.02, 0.05, 0.1, 0.2, math.inf)
SIGNATURE_GATES = (0.0, 0.02, 0.04, 0.08)
_DIATONIC = np.array([1.0, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1])
_SIGNATURES = np.stack([np.roll(_DIATONIC, tonic) for tonic in range(12)])


def variants(*, weightings: bool = True, profiles: bool = True, bass: bool = True) -> list[Variant]:
    """The search grid, the default analyzer first."""
    out = [DEFAULT]
    for weighting in WEIGHTINGS if weightings else WEIGHTINGS[:1]:
        for profile in PROFILES if profiles else PROFILES[:1]:
            out.append(Variant(weighting, profile.name, 0.0, 0.0))
            out += [
                Variant(weighting, profile.name, 0.0, 0.0, m, g) for g in SIGNATURE_GATES for m in SIGNATURE_MARGINS
            ]
            if bass:
                out += [Variant(weighting, profile.name, c, w) for c in BASS_CUTS for w in BASS_WEIGHTS]
    return list(dict.fromkeys(out))


@dataclass
class Peaks:
    """Every spectral peak of one signal and the default analyzer's summary of it."""

    frame: npt.NDArray[np.int64]
    pitch: Vector
    amplitude: Vector
    prominence: Vector
    harmonic: Vector
    n_frames: int
    summary: ChromaSummary


def find_peaks(mono: npt.NDArray[np.float32]) -> Peaks:
    """The default analyzer's peaks of ``mono`` (22050 Hz) with prominence and HPSS harmonic share."""
    bin_hz = ANALYSIS_RATE_HZ / FRAME
    first = max(1, math.floor(librosa.midi_to_hz(MIN_PITCH) / bin_hz) - 1)
    last = min(FRAME // 2 - 1, math.ceil(librosa.midi_to_hz(MAX_PITCH) / bin_hz) + 1)
    full = np.abs(librosa.stft(mono, n_fft=FRAME, hop_length=HOP, center=False, window="hann")).T
    harmonic = scipy.ndimage.median_filter(full, size=(5, 1), mode="nearest")
    percussive = scipy.ndimage.median_filter(full, size=(1, 17), mode="nearest")
    share_all = harmonic**2 / np.maximum(harmonic**2 + percussive**2, 1e-30)
    local_median = percussive
    magnitude = full[:, first - 1 : last + 2]
    silence = float(np.hanning(FRAME).sum() / 2.0) * 10.0 ** (SILENCE_DBFS / 20.0)
    loudest = magnitude.max(axis=1)
    keep = loudest >= silence
    log_mag = np.log(np.maximum(magnitude, 1e-30))
    centre = log_mag[:, 1:-1]
    is_peak = (centre > log_mag[:, :-2]) & (centre >= log_mag[:, 2:])
    is_peak &= magnitude[:, 1:-1] >= (loudest * 10.0 ** (-40.0 / 20.0))[:, None]
    is_peak &= keep[:, None]
    frame_idx, col = np.nonzero(is_peak)
    col += 1
    left, mid, right = log_mag[frame_idx, col - 1], log_mag[frame_idx, col], log_mag[frame_idx, col + 1]
    curvature = left - 2.0 * mid + right
    offset = np.where(curvature < 0.0, 0.5 * (left - right) / np.where(curvature < 0.0, curvature, -1.0), 0.0)
    freq_hz = (col + first - 1 + offset) * bin_hz
    pitch = 69.0 + 12.0 * np.log2(freq_hz / 440.0)
    amplitude = np.exp(mid - 0.25 * (left - right) * offset)
    in_range = (pitch >= MIN_PITCH) & (pitch < MAX_PITCH)
    full_col = col + first - 1
    prominence = magnitude[frame_idx, col] / np.maximum(local_median[frame_idx, full_col], 1e-30)
    share = share_all[frame_idx, full_col]
    sel = in_range
    peaks = Peaks(
        frame_idx[sel], pitch[sel], amplitude[sel], prominence[sel], share[sel], full.shape[0], _EMPTY_SUMMARY
    )
    weight = peak_weights(peaks, "plain", register=True)
    peaks.summary = summarise(peaks, weight)
    return peaks


_EMPTY_SUMMARY = ChromaSummary(
    chroma=np.zeros(12),
    upper_chroma=np.zeros(12),
    tuning_semitones=0.0,
    tuning_coherence=0.0,
    tonal_frames=0,
    frames=0,
    hop_s=HOP / ANALYSIS_RATE_HZ,
)


def peak_weights(peaks: Peaks, weighting: str, *, register: bool, below: float | None = None) -> Vector:
    """Per-peak weights as the analyzer makes them (register window, frame sum ** 0.5) under ``weighting``;
    ``below``: only the peaks under this pitch, without the register window (the bass chroma)."""
    amplitude = peaks.amplitude.copy()
    if weighting.startswith("prominence>="):
        amplitude *= peaks.prominence >= float(weighting.split(">=")[1])
    elif weighting.startswith("hpss^"):
        amplitude *= peaks.harmonic ** float(weighting.split("^")[1])
    if register:
        amplitude *= np.exp(-0.5 * ((peaks.pitch - 60.0) / 18.0) ** 2)
    if below is not None:
        amplitude *= peaks.pitch < below
    per_frame = np.bincount(peaks.frame, weights=amplitude, minlength=peaks.n_frames)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(per_frame > 0.0, per_frame ** (-0.5), 0.0)
    return amplitude * scale[peaks.frame]


def summarise(peaks: Peaks, weight: Vector, tuning: float | None = None) -> ChromaSummary:
    """A chroma summary of the peaks under ``weight`` (tuning from these weights unless given)."""
    phase = complex(np.sum(weight * np.exp(2j * np.pi * peaks.pitch)))
    total = float(weight.sum())
    tonal_frames = int(np.count_nonzero(np.bincount(peaks.frame, weights=weight, minlength=peaks.n_frames)))
    if total <= 0.0:
        return _EMPTY_SUMMARY
    tuning = float(np.angle(phase) / (2.0 * np.pi)) if tuning is None else tuning
    bins = np.round(peaks.pitch * 10).astype(np.int64) % 120
    histogram = np.bincount(bins, weights=weight, minlength=120)
    position = np.arange(120) / 10 - tuning
    lower = np.floor(position)
    share = position - lower
    lower_class = lower.astype(np.int64) % 12
    chroma = np.bincount(lower_class, weights=histogram * (1.0 - share), minlength=12)
    chroma += np.bincount((lower_class + 1) % 12, weights=histogram * share, minlength=12)
    return ChromaSummary(
        chroma=chroma / chroma.sum(),
        upper_chroma=np.zeros(12),
        tuning_semitones=tuning,
        tuning_coherence=abs(phase) / total,
        tonal_frames=tonal_frames,
        frames=peaks.n_frames,
        hop_s=HOP / ANALYSIS_RATE_HZ,
    )


@dataclass
class Item:
    """One piece: its truth (or reference), group labels and the key every variant names."""

    title: str
    truth: KeySignature
    groups: dict[str, str]
    keys: dict[Variant, KeySignature | None]


def estimate_all(peaks: Peaks, grid: Sequence[Variant]) -> dict[Variant, KeySignature | None]:
    """The key each variant names (None for all when the default analyzer's tonal-evidence gate says no key)."""
    if decide_key(peaks.summary, TEMPLATES[KRUMHANSL_KESSLER.name], KeyDecision()).key is None:
        return dict.fromkeys(grid)
    tuning = peaks.summary.tuning_semitones
    main: dict[str, Vector] = {}
    bass: dict[tuple[str, float], Vector] = {}
    out: dict[Variant, KeySignature | None] = {}
    for v in grid:
        if v.weighting not in main:
            main[v.weighting] = summarise(peaks, peak_weights(peaks, v.weighting, register=True), tuning).chroma
        score = key_correlations(main[v.weighting], TEMPLATES[v.profile])
        if v.bass_weight:
            if (v.weighting, v.bass_cut) not in bass:
                w = peak_weights(peaks, v.weighting, register=False, below=v.bass_cut)
                bass[v.weighting, v.bass_cut] = summarise(peaks, w, tuning).chroma
            score = score + v.bass_weight * key_correlations(bass[v.weighting, v.bass_cut], TEMPLATES[v.profile])
        if v.signature_first:
            # Key signature (the diatonic collection holding most of the chroma), then the major key or its relative
            # minor by the profile; taken over the profile's own best key when that is within the margin of it.
            fits = _SIGNATURES @ main[v.weighting]
            signature = int(np.argmax(fits))
            clear = fits[signature] - np.partition(fits, -2)[-2] >= v.signature_gate
            pair = np.array([signature, (signature + 9) % 12 + 12])
            in_signature = int(pair[np.argmax(score[pair])])
            best = int(np.argmax(score))
            close = clear and score[best] - score[in_signature] < v.signature_margin
            out[v] = key_of_template(in_signature if close else best)
        else:
            out[v] = key_of_template(int(np.argmax(score)))
    return out


def _mono(path: Path) -> npt.NDArray[np.float32]:
    with AudioReader(path) as reader:
        return np.concatenate([block.mono for block in reader.blocks()])


def mean_score(items: Sequence[Item], variant: Variant) -> float:
    return float(np.mean([mirex_key_score(i.keys[variant], i.truth) for i in items])) if items else 0.0


def held_out(items: Sequence[Item], group: str, grid: Sequence[Variant]) -> tuple[list[float], dict[str, Variant]]:
    """Per item, the MIREX score of the variant chosen without its group; the chosen variant per group."""
    matrix = np.array([[mirex_key_score(i.keys[v], i.truth) for v in grid] for i in items])
    labels = np.array([i.groups[group] for i in items])
    scores = np.zeros(len(items))
    chosen = {}
    for name in sorted(set(labels)):
        best = int(np.argmax(matrix[labels != name].mean(axis=0)))  # ties: the earlier variant
        chosen[name] = grid[best]
        scores[labels == name] = matrix[labels == name, best]
    return [float(s) for s in scores], chosen


def time_suppression(demo_cache_dir: Path, repeats: int) -> None:
    """CPU time on one 4-minute demo piece: the key analyzer, and the two HPSS median filters over its G2-C7 bins."""
    path = cached_corpus(tempo_key_corpus(24, duration_s=240.0, seed=7)[:1], demo_cache_dir)[0]
    with AudioReader(path) as reader:
        info, blocks = reader.info, list(reader.blocks())
    mono = np.concatenate([block.mono for block in blocks])
    magnitude = np.abs(librosa.stft(mono, n_fft=FRAME, hop_length=HOP, center=False, window="hann")).T[:, 8:410]
    times: dict[str, list[float]] = {}
    for _ in range(repeats):
        start = time.process_time()
        session = KeyAnalyzer().start(info)
        for block in blocks:
            session.feed(block)
        session.finish()
        times.setdefault("key analyzer (decoded blocks to key)", []).append(time.process_time() - start)
        start = time.process_time()
        scipy.ndimage.median_filter(magnitude, size=(1, 17), mode="nearest")
        times.setdefault("median over 17 bins in frequency (prominence; HPSS P)", []).append(
            time.process_time() - start
        )
        start = time.process_time()
        scipy.ndimage.median_filter(magnitude, size=(5, 1), mode="nearest")
        times.setdefault("median over 5 frames in time (HPSS H)", []).append(time.process_time() - start)
    print(f"\n### CPU time on one {mono.size / ANALYSIS_RATE_HZ:.0f} s piece, median of {repeats}\n")
    for label, values in times.items():
        print(f"- {label}: {statistics.median(values):.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache-dir", type=Path, default=rc.DEFAULT_CACHE_DIR)
    parser.add_argument("--demo-cache-dir", type=Path, default=Path("bench-data/key-corpus"))
    parser.add_argument("--demo-pieces", type=int, default=48)
    parser.add_argument("--time-only", action="store_true", help="only the CPU times on a 4-minute piece")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.time_only:
        time_suppression(args.demo_cache_dir, args.repeats)
        return
    grid = variants()
    clips = rc.rhythm_corpus(12, duration_s=24.0, seed=0)
    rhythm: list[Item] = []
    for clip, path in zip(clips, rc.cached_clip_paths(clips, args.cache_dir), strict=True):
        groups = {
            "family": clip.family,
            "soundfont": clip.soundfont,
            "progression": f"{clip.key.mode} {'-'.join(map(str, rc.progression(clip)))}",
        }
        rhythm.append(Item(clip.title, clip.key, groups, estimate_all(find_peaks(_mono(path)), grid)))
    print(f"rhythm corpus: {len(rhythm)} clips (main's generator), {len(grid)} variants")

    searches: dict[str, list[Variant]] = {
        "all directions": grid,
        "profiles only": [v for v in variants(weightings=False, bass=False) if not v.signature_first],
        "signature first or not, profiles": variants(weightings=False, bass=False),
        "peak weighting only": [v for v in variants(profiles=False, bass=False) if not v.signature_first],
        "bass term only": [v for v in variants(weightings=False, profiles=False) if not v.signature_first],
        "default analyzer (nothing chosen)": [DEFAULT],
    }
    print("\n### Held-out MIREX on the rhythm corpus (variant chosen on the fitting folds only)\n")
    print("| search | leave-one-family-out | worst family | leave-one-progression-out | worst progression |")
    print("|---|---|---|---|---|")
    chosen_all: Counter[Variant] = Counter()
    notes: list[str] = []
    for label, search in searches.items():
        cells = []
        for group in ("family", "progression"):
            scores, chosen = held_out(rhythm, group, search)
            per = {
                name: float(np.mean([s for s, i in zip(scores, rhythm, strict=True) if i.groups[group] == name]))
                for name in chosen
            }
            worst = min(per, key=per.__getitem__)
            cells += [f"{np.mean(scores):.3f}", f"{worst} {per[worst]:.3f}"]
            if label == "all directions":
                chosen_all.update(chosen.values())
                notes.append(
                    f"- chosen per left-out {group} (all directions): {dict(Counter(v.name for v in chosen.values()))}"
                )
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\n".join(notes))

    demo: list[Item] = []
    for seed in (0, 1):
        specs = tempo_key_corpus(args.demo_pieces, duration_s=30.0, seed=seed)
        for spec, path in zip(specs, cached_corpus(specs, args.demo_cache_dir), strict=True):
            demo.append(Item(path.name, spec.key, {"set": str(seed)}, estimate_all(find_peaks(_mono(path)), grid)))
    real = _real_items(args.cache_dir, grid)

    top = sorted(grid, key=lambda v: -mean_score(rhythm, v))[:5]
    shown = list(dict.fromkeys([DEFAULT, SIGNATURE_FIRST, *chosen_all, *top, *_one_direction(grid)]))
    print("\n### Single variants (rhythm in-sample: for reference, not a result)\n")
    print(
        "| variant | rhythm (in-sample) | demo dev | demo held-out | real: same as Essentia | real MIREX vs Essentia |"
    )
    print("|---|---|---|---|---|---|")
    for v in shown:
        dev = mean_score([i for i in demo if i.groups["set"] == "0"], v)
        ho = mean_score([i for i in demo if i.groups["set"] == "1"], v)
        same = sum(i.keys[v] == i.truth for i in real)
        print(
            f"| {v.name}{' (chosen by a fold)' if v in chosen_all else ''} | {mean_score(rhythm, v):.3f} | {dev:.3f} |"
            f" {ho:.3f} | {same} of {len(real)} | {mean_score(real, v):.3f} |"
        )
    _profile_table(rhythm, demo, real)


def _one_direction(grid: Sequence[Variant]) -> list[Variant]:
    """Krumhansl-Kessler variants that change one thing of the default: the peak weighting, the bass term, or the
    signature step (no gate, and a gate of 0.02)."""
    kk = [v for v in grid if v.profile == KRUMHANSL_KESSLER.name]
    weighting = [v for v in kk if not v.bass_weight and not v.signature_first]
    bass = [v for v in kk if v.weighting == "plain" and v.bass_weight]
    signature = [v for v in kk if v.weighting == "plain" and v.signature_first and v.signature_gate in (0.0, 0.02)]
    return [*weighting, *bass, *signature]


def _profile_table(rhythm: Sequence[Item], demo: Sequence[Item], real: Sequence[Item]) -> None:
    print("\n### Each profile, plain peaks, no bass term (rhythm in-sample, one number per profile)\n")
    print("| profile | rhythm | demo (dev + held-out) | real MIREX vs Essentia |\n|---|---|---|---|")
    for profile in PROFILES:
        v = Variant("plain", profile.name, 0.0, 0.0)
        print(
            f"| {profile.name} | {mean_score(rhythm, v):.3f} | {mean_score(demo, v):.3f} | {mean_score(real, v):.3f} |"
        )


def _real_items(cache_dir: Path, grid: Sequence[Variant]) -> list[Item]:
    from scripts.bench_tempo_real import PACKAGES, real_tracks

    cache_path = cache_dir / "real" / "key-peers-60s.json"
    peers: dict[str, str] = json.loads(cache_path.read_text())
    tracks = real_tracks(cache_dir, PACKAGES)
    items = []
    for track in tracks:
        reference = KeySignature.parse(peers[track.excerpt.name])
        keys = estimate_all(find_peaks(_mono(track.excerpt)), grid)
        items.append(Item(track.excerpt.name, reference, {"package": track.package}, keys))
    return items


if __name__ == "__main__":
    main()
