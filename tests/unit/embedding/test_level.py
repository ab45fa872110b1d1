"""Level normalisation of MusiCNN's input (``level.py``) and the level-free default model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sidecar.analyzers.embedding import EmbeddingAnalyzer
from sidecar.analyzers.embedding.level import MAX_GAIN_DB, TARGET_LUFS, gain_db, loudness_lufs, normalise
from sidecar.analyzers.embedding.musicnn_model import HARMONIC_MODEL, LEVELLED_MODEL, POOL_MODEL
from sidecar.analyzers.pipeline import analyze_file
from sidecar.demo.encode import write_audio
from sidecar.domain import EmbeddingResult
from sidecar.settings import EmbeddingSettings, Settings

RATE_HZ = 16000


def _sine(amplitude: float, seconds: float = 3.0, hz: float = 1000.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE_HZ)) / RATE_HZ
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_a_full_scale_1khz_sine_patch_measures_about_0_lufs_as_dual_mono() -> None:
    # BS.1770: a 0 dBFS 1 kHz sine in both channels of a stereo file reads +0.0 LUFS (K-weighting adds ~0.7 dB at
    # 1 kHz, offset by the -0.691 constant); one mono patch counts as both channels.
    lufs = loudness_lufs(_sine(1.0)[None], RATE_HZ)
    assert lufs == pytest.approx(0.0, abs=0.1)


def test_joint_loudness_pools_the_blocks_of_all_patches() -> None:
    loud, quiet = _sine(0.5), _sine(0.05)  # -6 dBFS and -26 dBFS: the quiet patch is under the -10 LU relative gate
    joint = loudness_lufs(np.stack([loud, quiet]), RATE_HZ)
    alone = loudness_lufs(loud[None], RATE_HZ)
    assert joint == pytest.approx(alone, abs=0.01)


def test_silence_has_no_loudness_and_gets_the_capped_gain() -> None:
    assert loudness_lufs(np.zeros((2, 48128), np.float32), RATE_HZ) is None
    assert gain_db(None) == MAX_GAIN_DB
    assert gain_db(-80.0) == MAX_GAIN_DB  # near-silence is raised by 30 dB at most
    assert gain_db(-6.0) == pytest.approx(TARGET_LUFS + 6.0)  # loud masters are attenuated, without a cap


def test_normalise_scales_all_patches_by_one_gain_or_each_by_its_own() -> None:
    patches = np.stack([_sine(0.5), _sine(0.1)])
    track = normalise(patches, RATE_HZ)
    each = normalise(patches, RATE_HZ, per_patch=True)
    gains = np.abs(track).max(axis=1) / np.abs(patches).max(axis=1)
    assert gains[0] == pytest.approx(gains[1], rel=1e-5)  # one gain for both
    assert loudness_lufs(track, RATE_HZ) == pytest.approx(TARGET_LUFS, abs=0.02)
    for patch in each:
        assert loudness_lufs(patch[None], RATE_HZ) == pytest.approx(TARGET_LUFS, abs=0.02)


def _analyzer(tmp_path: Path, model: str) -> EmbeddingAnalyzer:
    embedding = EmbeddingSettings.model_validate({"model": model, "fallback": False, "patches_per_track": 3})
    analyzer = EmbeddingAnalyzer(Settings(data_dir=tmp_path / model, embedding=embedding))
    analyzer.check()
    return analyzer


def _music(seconds: float = 10.0) -> np.ndarray:
    """A swelling harmonic tone with clicks and a little noise, peak about 0.23 (+6 dB does not clip)."""
    rng = np.random.default_rng(3)
    t = np.arange(round(seconds * RATE_HZ)) / RATE_HZ
    tone = sum(0.12 / k * np.sin(2 * np.pi * 196 * k * t) for k in range(1, 9))
    signal = tone * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t)) + 0.01 * rng.standard_normal(t.size)
    signal[:: RATE_HZ // 4] += 0.2
    return signal.astype(np.float32)


def _embed(tmp_path: Path, analyzer: EmbeddingAnalyzer, samples: np.ndarray, name: str) -> EmbeddingResult:
    path = write_audio(np.repeat(samples[:, None], 2, axis=1), RATE_HZ, tmp_path / f"{name}.flac", format_name="flac24")
    result = analyze_file(path, [analyzer]).results["embedding"]
    assert isinstance(result, EmbeddingResult)
    return result


def test_the_default_vector_does_not_depend_on_the_playback_level_and_the_old_one_does(tmp_path: Path) -> None:
    music = _music()
    differences = {}
    for model in (LEVELLED_MODEL, HARMONIC_MODEL):
        analyzer = _analyzer(tmp_path, model)
        vectors = [_embed(tmp_path, analyzer, music * 10 ** (db / 20), f"{model}{db}").vector for db in (0, -12, 6)]
        differences[model] = max(float(np.abs(vectors[0] - v).max()) for v in vectors[1:])
    assert differences[LEVELLED_MODEL] < 1e-4
    assert differences[HARMONIC_MODEL] > 1e-4  # the same check fails on the model without normalisation


def test_the_default_keeps_the_tags_of_the_patches_as_they_are(tmp_path: Path) -> None:
    music = _music() * np.float32(0.25)  # -12 dB: the tags see the quiet track, the vector the normalised one
    levelled = _embed(tmp_path, _analyzer(tmp_path, LEVELLED_MODEL), music, "levelled")
    pool = _embed(tmp_path, _analyzer(tmp_path, POOL_MODEL), music, "pool")
    assert levelled.tags == pool.tags


def test_silence_and_near_silence_give_a_defined_finite_vector_not_amplified_noise(tmp_path: Path) -> None:
    analyzer = _analyzer(tmp_path, LEVELLED_MODEL)
    noise = np.random.default_rng(0).standard_normal(10 * RATE_HZ).astype(np.float32)
    silence = _embed(tmp_path, analyzer, np.zeros_like(noise), "silence").vector
    faint = _embed(tmp_path, analyzer, noise * np.float32(1e-5), "faint").vector  # -100 dBFS: raised 30 dB at most
    audible = _embed(tmp_path, analyzer, noise * np.float32(0.05), "audible").vector  # the same noise, normalised
    assert np.isfinite(faint).all()
    assert float(np.linalg.norm(faint)) == pytest.approx(1.0, abs=1e-5)
    assert float(faint @ silence) > 0.999
    assert float(faint @ audible) < float(faint @ silence) - 0.05
