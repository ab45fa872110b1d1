"""Quality measures for embeddings (tests and ``scripts/bench_embedding.py``): neighbour precision, robustness,
and the broad similarity corpus (many instruments, melodies, arrangements, soundfonts and effects).

Vectors are compared by cosine similarity (they are L2-normalised), as the similar-tracks search does.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sidecar.analyzers.audio import ANALYSIS_RATE_HZ, read_mono
from sidecar.analyzers.base import Analyzer
from sidecar.analyzers.pipeline import analyze_file
from sidecar.demo.encode import write_audio
from sidecar.demo.music import (
    ALL_KEYS,
    LEAD_PROGRAMS,
    SAMPLE_RATE_HZ,
    TEMPO_RANGES_BPM,
    PieceSpec,
    render,
)
from sidecar.domain import AnalyzerOutput, EmbeddingResult


def embed_files(paths: Sequence[Path], analyzer: Analyzer[AnalyzerOutput]) -> npt.NDArray[np.float32]:
    """Embedding vectors of ``paths`` (one row each) from ``analyzer``; raises ``RuntimeError`` if one fails."""
    rows: list[npt.NDArray[np.float32]] = []
    for path in paths:
        analysis = analyze_file(path, [analyzer])
        result = analysis.results.get(analyzer.name)
        if not isinstance(result, EmbeddingResult):
            raise RuntimeError(f"no embedding for {path}: {analysis.error or analysis.failures}")
        rows.append(result.vector)
    return np.stack(rows)


def precision_at_k(vectors: npt.NDArray[np.float32], labels: Sequence[object], *, k: int) -> float:
    """Mean share of each vector's ``k`` nearest others (cosine) that carry its label."""
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    neighbours = np.argsort(-similarity, axis=1)[:, :k]
    label_array = np.asarray(labels)
    return float((label_array[neighbours] == label_array[:, None]).mean())


def nearest_original_rate(originals: npt.NDArray[np.float32], variants: npt.NDArray[np.float32]) -> float:
    """Share of variants (row i derived from original i) whose nearest original (cosine) is their own."""
    nearest = np.argmax(variants @ originals.T, axis=1)
    return float((nearest == np.arange(originals.shape[0])).mean())


def degrade(
    source: str | os.PathLike[str], target: str | os.PathLike[str], *, gain_db: float, bit_rate: int = 128_000
) -> Path:
    """Re-encode ``source`` as the robustness tests need: mono, resampled to 22 050 Hz, ``gain_db`` louder (samples
    beyond full scale are clipped), MP3 at ``bit_rate`` bits per second."""
    mono = read_mono(source) * np.float32(10.0 ** (gain_db / 20.0))
    return write_audio(
        np.clip(mono, -1.0, 1.0)[:, None], ANALYSIS_RATE_HZ, target, format_name="mp3", bit_rate=bit_rate
    )


# --- The broad similarity corpus of scripts/bench_embedding.py ---------------------------------------------------

EVAL_PROGRAMS: tuple[int, ...] = (*LEAD_PROGRAMS, 48, 52)
"""The 12 GM lead programs plus string ensemble (48) and choir aahs (52)."""
ARRANGEMENTS: tuple[str, ...] = ("solo", "chords", "drums")
"""``solo``: the melody alone; ``chords``: the same instrument also plays the chords and the bass line; ``drums``:
the melody over a drum groove. The labelled instrument is always the only pitched one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Effects:
    """Post-processing of one clip: reverb (wet share 0..1, RT60 seconds), chorus (wet share 0..1) and a spectral
    tilt (dB per octave around 1 kHz, positive = brighter)."""

    reverb_wet: float
    reverb_rt60_s: float
    chorus_mix: float
    tilt_db_per_octave: float


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalClip:
    """One clip of the broad corpus: the lead ``program`` (the label), the ``melody`` (same notes, key and tempo for
    every program), the ``soundfont`` (a name of the caller's soundfont table), the arrangement and the effects."""

    program: int
    melody: int
    soundfont: str
    arrangement: str
    spec: PieceSpec
    effects: Effects

    def digest(self) -> str:
        """A stable name for the rendered file (changes whenever anything that shapes the audio changes)."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


def broad_corpus(
    soundfonts: Sequence[str],
    *,
    programs: Sequence[int] = EVAL_PROGRAMS,
    melodies: int = 4,
    duration_s: float = 15.0,
    seed: int = 0,
) -> list[EvalClip]:
    """Every program plays every melody with every soundfont.

    A melody fixes notes (seed), key and tempo for all programs; the arrangement rotates with program and melody so
    each program and each melody meets all three; level, drum groove and effects are drawn per clip.
    Deterministic for a given ``seed``.
    """
    rng = np.random.default_rng(seed)
    tunes = [(ALL_KEYS[int(rng.integers(len(ALL_KEYS)))], float(rng.integers(76, 128))) for _ in range(melodies)]
    clips: list[EvalClip] = []
    for font in soundfonts:
        for p_index, program in enumerate(programs):
            for melody, (key, bpm) in enumerate(tunes):
                arrangement = ARRANGEMENTS[(p_index + melody) % len(ARRANGEMENTS)]
                grooves = [g for g, (lo, hi) in TEMPO_RANGES_BPM.items() if lo <= bpm <= hi and g != "none"]
                spec = PieceSpec(
                    title=f"program {program} melody {melody} {font} {arrangement}",
                    bpm=bpm,
                    key=key,
                    groove=grooves[int(rng.integers(len(grooves)))] if arrangement == "drums" else "none",
                    duration_s=duration_s,
                    seed=seed * 1000 + melody,
                    lead_program=program,
                    chord_program=program,
                    bass_program=program,
                    accompaniment=arrangement == "chords",
                    gain_db=-float(rng.uniform(0.0, 9.0)),
                )
                effects = Effects(
                    reverb_wet=round(float(rng.uniform(0.0, 0.35)), 3),
                    reverb_rt60_s=round(float(rng.uniform(0.3, 2.0)), 3),
                    chorus_mix=round(float(rng.choice([0.0, rng.uniform(0.1, 0.4)])), 3),
                    tilt_db_per_octave=round(float(rng.uniform(-2.0, 2.0)), 3),
                )
                clips.append(EvalClip(program=program, melody=melody, soundfont=font, arrangement=arrangement,
                                      spec=spec, effects=effects))  # fmt: skip
    return clips


def apply_effects(
    audio: npt.NDArray[np.float32], rate_hz: int, effects: Effects, *, seed: int
) -> npt.NDArray[np.float32]:
    """``audio`` (n, channels) with chorus, reverb and tilt applied, the peak brought back to its old value."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(seed)
    x = audio.astype(np.float64)
    n = x.shape[0]
    t = np.arange(n) / rate_hz
    if effects.chorus_mix > 0:
        delay_s = 0.02 + 0.004 * np.sin(2 * np.pi * 0.8 * t)
        delayed = np.stack([np.interp(t - delay_s, t, x[:, c], left=0.0) for c in range(x.shape[1])], axis=1)
        x = (1 - effects.chorus_mix) * x + effects.chorus_mix * delayed
    if effects.reverb_wet > 0:
        ir_t = np.arange(round(effects.reverb_rt60_s * rate_hz)) / rate_hz
        ir = rng.standard_normal(ir_t.shape[0]) * np.exp(-6.9 * ir_t / effects.reverb_rt60_s)
        ir /= np.sqrt(np.sum(ir**2))
        wet = np.stack([fftconvolve(x[:, c], ir)[:n] for c in range(x.shape[1])], axis=1)
        x = (1 - effects.reverb_wet) * x + effects.reverb_wet * wet
    freqs = np.fft.rfftfreq(n, 1.0 / rate_hz)
    gain = 10.0 ** (effects.tilt_db_per_octave * np.log2(np.maximum(freqs, 50.0) / 1000.0) / 20.0)
    x = np.fft.irfft(np.fft.rfft(x, axis=0) * gain[:, None], n=n, axis=0)
    peak_in, peak_out = float(np.abs(audio).max()), float(np.abs(x).max())
    if peak_out > 0:
        x *= peak_in / peak_out
    return x.astype(np.float32)


def cached_clips(
    clips: Sequence[EvalClip], soundfonts: Mapping[str, Path], cache_dir: str | os.PathLike[str]
) -> list[Path]:
    """FLAC files (44.1 kHz stereo) of ``clips`` under ``cache_dir``, rendering only those not already there."""
    directory = Path(cache_dir)
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for clip in clips:
        path = directory / f"{clip.digest()}.flac"
        if not path.exists():
            audio = render(clip.spec, soundfont=soundfonts[clip.soundfont])
            audio = apply_effects(audio, SAMPLE_RATE_HZ, clip.effects, seed=clip.spec.seed)
            partial = path.with_suffix(".partial.flac")
            write_audio(audio, SAMPLE_RATE_HZ, partial, format_name="flac")
            partial.replace(path)
        paths.append(path)
    return paths
