"""MusiCNN: the checkpoint reader, the weights' loading path, the network against the reference, the analyzer."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sidecar.analyzers.embedding import EmbeddingAnalyzer, musicnn_weights
from sidecar.analyzers.embedding.musicnn import (
    EXPECTED_SHAPES,
    MSD_TAGS,
    MTT_TAGS,
    PATCH_FRAMES,
    MusicnnNetwork,
    harmonic_power,
)
from sidecar.analyzers.embedding.musicnn_checkpoint import CheckpointError, read_checkpoint, read_index
from sidecar.analyzers.embedding.musicnn_model import HARMONIC_MODEL, LEVELLED_MODEL, POOL_MODEL
from sidecar.analyzers.embedding.weights import WeightsChecksumError, WeightsMissingError
from sidecar.analyzers.pipeline import analyze_file
from sidecar.demo.encode import write_audio
from sidecar.domain import EmbeddingResult
from sidecar.errors import FatalAnalyzerError
from sidecar.settings import EmbeddingSettings, Settings


@pytest.fixture(scope="module")
def network() -> MusicnnNetwork:
    return musicnn_weights.load_network(None)


@pytest.fixture
def wheel_files() -> musicnn_weights.CheckpointFiles:
    return musicnn_weights.locate(None)


def _cache_copy(model_dir: Path, files: musicnn_weights.CheckpointFiles) -> Path:
    target = musicnn_weights.cache_dir(model_dir)
    target.mkdir(parents=True)
    shutil.copy(files.index, target / musicnn_weights.INDEX_FILE)
    shutil.copy(files.data, target / musicnn_weights.DATA_FILE)
    return target


def _settings(tmp_path: Path, **embedding: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", embedding=EmbeddingSettings.model_validate(embedding))


def _harmonic_16k(seconds: float) -> np.ndarray:
    """The signal the reference numbers below were computed on: 220 Hz with 8 harmonics, slowly swelling."""
    t = np.arange(round(seconds * 16000)) / 16000
    tone = sum(0.3 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 9))
    return np.clip(tone * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t)), -1, 1).astype(np.float32)


def test_reader_finds_every_variable_of_the_wheel_checkpoint_with_its_shape(
    wheel_files: musicnn_weights.CheckpointFiles,
) -> None:
    tensors = read_checkpoint(wheel_files.index, wheel_files.data)
    shapes = {name: tensors[name].shape for name in EXPECTED_SHAPES}
    assert (shapes, tensors["batch_normalization_9/gamma"].shape, str(tensors["dense_1/bias"].dtype)) == (
        EXPECTED_SHAPES,
        (1506,),
        "float32",
    )


def test_reader_names_the_file_of_a_truncated_data_file(
    tmp_path: Path, wheel_files: musicnn_weights.CheckpointFiles
) -> None:
    data = tmp_path / "x.data-00000-of-00001"
    data.write_bytes(wheel_files.data.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=rf"{data}.*truncated"):
        read_checkpoint(wheel_files.index, data)


def test_reader_rejects_an_index_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    index = tmp_path / "x.index"
    index.write_bytes(b"\0" * 100)
    with pytest.raises(CheckpointError, match=rf"{index}: not a TensorFlow checkpoint index"):
        read_index(index)


def test_weights_in_the_model_cache_are_used_before_the_package(
    tmp_path: Path, wheel_files: musicnn_weights.CheckpointFiles
) -> None:
    target = _cache_copy(tmp_path, wheel_files)
    found = musicnn_weights.locate(tmp_path)
    assert (found.index.parent, found.origin, wheel_files.origin) == (target, "model cache", "musicnn package")


def test_a_corrupt_weights_file_is_an_error_naming_it_and_the_fix(
    tmp_path: Path, wheel_files: musicnn_weights.CheckpointFiles
) -> None:
    target = _cache_copy(tmp_path, wheel_files)
    data = target / musicnn_weights.DATA_FILE
    raw = bytearray(data.read_bytes())
    raw[5000] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(WeightsChecksumError, match=rf"{data} \(model cache\) is corrupt.*pip install"):
        musicnn_weights.load_network(tmp_path)


def test_missing_weights_are_an_error_saying_how_to_install_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(musicnn_weights, "_package_dir", lambda: None)  # as if the wheel were not installed
    with pytest.raises(WeightsMissingError, match=r"pip install --no-deps musicnn==0\.1\.0.*musicnn/MSD_musicnn"):
        musicnn_weights.locate(tmp_path)


def test_the_mtt_checkpoint_loads_into_the_same_architecture_and_differs_from_msd(network: MusicnnNetwork) -> None:
    mtt = musicnn_weights.load_network(None, musicnn_weights.MTT_CHECKPOINT)
    with torch.inference_mode():
        patch = network.logmel(torch.from_numpy(_harmonic_16k(3.008))[None])
        msd_out, mtt_out = network(patch), mtt(patch)
    assert (mtt_out.max_pool.shape, mtt_out.tags.shape, len(MTT_TAGS)) == ((1, 753), (1, 50), 50)
    assert not torch.allclose(msd_out.max_pool, mtt_out.max_pool, atol=1e-3)


def test_a_corrupt_mtt_file_is_checked_against_the_mtt_checksum(tmp_path: Path) -> None:
    files = musicnn_weights.locate(None, musicnn_weights.MTT_CHECKPOINT)
    target = musicnn_weights.cache_dir(tmp_path, musicnn_weights.MTT_CHECKPOINT)
    target.mkdir(parents=True)
    shutil.copy(files.index, target / musicnn_weights.INDEX_FILE)
    shutil.copy(musicnn_weights.locate(None).data, target / musicnn_weights.DATA_FILE)  # the MSD data file
    expected = musicnn_weights.SHA256[musicnn_weights.MTT_CHECKPOINT][musicnn_weights.DATA_FILE]
    with pytest.raises(WeightsChecksumError, match=rf"{target}.*expected {expected}"):
        musicnn_weights.load_network(tmp_path, musicnn_weights.MTT_CHECKPOINT)


def test_an_unknown_checkpoint_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not a known MusiCNN checkpoint: 'MSD_vgg'"):
        musicnn_weights.locate(None, "MSD_vgg")


def test_network_matches_the_tensorflow_reference_on_a_known_signal(network: MusicnnNetwork) -> None:
    """Reference: musicnn 0.1.0 ``extractor(file, "MSD_musicnn")`` (TensorFlow 2.15, see scripts/musicnn_parity.py)
    on the same 8 s signal: mean taggram top 5 and the largest mean ``max_pool`` features."""
    with torch.inference_mode():
        mel = network.logmel(torch.from_numpy(_harmonic_16k(8.0))[None], center=True)[0]
        patches = torch.stack([mel[i * PATCH_FRAMES : (i + 1) * PATCH_FRAMES] for i in range(2)])
        out = network(patches)
    tags = out.tags.mean(dim=0).numpy()
    pool = out.max_pool.mean(dim=0).numpy()
    top = [(MSD_TAGS[i], round(float(tags[i]), 3)) for i in np.argsort(-tags)[:5]]
    assert top == [("indie", 0.253), ("ambient", 0.203), ("experimental", 0.162), ("alternative", 0.101),
                   ("instrumental", 0.094)]  # fmt: skip
    np.testing.assert_allclose(pool[[155, 717, 727, 695]], [47.052, 22.765, 19.649, 19.631], atol=2e-3)


def test_the_msd_pool_model_gives_a_unit_753_vector_with_50_tags(tmp_path: Path) -> None:
    path = write_audio(np.repeat(_harmonic_16k(10.0)[:, None], 2, axis=1), 16000, tmp_path / "h.flac")
    analyzer = EmbeddingAnalyzer(_settings(tmp_path, model="musicnn-msd-pool-753", fallback=False, patches_per_track=2))
    analyzer.check()
    result = analyze_file(path, [analyzer]).results["embedding"]
    assert isinstance(result, EmbeddingResult)
    probabilities = [p for _, p in result.tags]
    assert (result.model, analyzer.dim, result.vector.shape, round(float(np.linalg.norm(result.vector)), 5)) == (
        "musicnn-msd-pool-753",
        753,
        (753,),
        1.0,
    )
    assert ([t for t, _ in result.tags], all(0.0 <= p <= 1.0 for p in probabilities)) == (list(MSD_TAGS), True)
    assert max(result.tags, key=lambda pair: pair[1])[0] in {"indie", "ambient", "experimental"}


def test_the_taggram_model_stores_the_tag_probabilities_as_its_vector(tmp_path: Path) -> None:
    path = write_audio(np.repeat(_harmonic_16k(7.0)[:, None], 2, axis=1), 16000, tmp_path / "h.flac")
    analyzer = EmbeddingAnalyzer(_settings(tmp_path, model="musicnn-msd-taggram-50", fallback=False))
    result = analyze_file(path, [analyzer]).results["embedding"]
    assert isinstance(result, EmbeddingResult)
    probabilities = np.array([p for _, p in result.tags], np.float32)
    assert (result.model, result.vector.shape) == ("musicnn-msd-taggram-50", (50,))
    np.testing.assert_allclose(result.vector, probabilities / np.linalg.norm(probabilities), rtol=1e-5)


@pytest.mark.parametrize("fallback", [True, False])
def test_musicnn_without_weights_falls_back_or_fails_at_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fallback: bool
) -> None:
    monkeypatch.setattr(musicnn_weights, "_package_dir", lambda: None)  # as if the wheel were not installed
    analyzer = EmbeddingAnalyzer(_settings(tmp_path, fallback=fallback))
    if fallback:
        analyzer.check()
        outcome = analyzer.model
    else:
        with pytest.raises(FatalAnalyzerError, match="MusiCNN weights not found"):
            analyzer.check()
        outcome = "failed"
    assert outcome == ("timbre-v1" if fallback else "failed")


@pytest.mark.parametrize(
    ("migration", "model", "dim"),
    [
        ("0014_create_musicnn_index.sql", "musicnn-msd-pool-753", 753),
        ("0023_create_musicnn_harmonic_index.sql", "musicnn-msd-mtt-harmonic-pool-1506", 1506),
        ("0026_create_musicnn_levelled_index.sql", "musicnn-msd-mtt-harmonic-pool-ln-1506", 1506),
    ],
)
def test_the_migrations_declare_the_musicnn_models_with_the_index_names_storage_would_choose(
    migration: str, model: str, dim: int
) -> None:
    from sidecar.storage.migrate import migrations_dir
    from sidecar.storage.vectors import _index_name

    text = (migrations_dir() / migration).read_text()
    assert f"'{model}', {dim}, '{_index_name(model, dim)}'" in text


def test_the_default_is_the_level_normalised_msd_mtt_harmonic_model() -> None:
    assert Settings().embedding.model == LEVELLED_MODEL == "musicnn-msd-mtt-harmonic-pool-ln-1506"


def test_harmonic_power_keeps_a_sustained_tone_and_attenuates_clicks() -> None:
    t = np.arange(48128) / 16000
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    clicks = np.zeros_like(t)
    clicks[::4000] = 1.0  # 4 clicks per second
    network = MusicnnNetwork()
    with torch.inference_mode():
        power = network.logmel.power(torch.from_numpy(np.stack([tone, clicks]).astype(np.float32)))
        kept = (harmonic_power(power).sum(dim=(1, 2)) / power.sum(dim=(1, 2))).numpy()
    assert (kept[0] > 0.9, kept[1] < 0.2) == (True, True)


def test_the_harmonic_model_gives_two_unit_halves_and_the_msd_tags_deterministically(tmp_path: Path) -> None:
    signal = _harmonic_16k(10.0)
    signal[::2000] += 0.8  # clicks over the tone
    path = write_audio(np.repeat(np.clip(signal, -1, 1)[:, None], 2, axis=1), 16000, tmp_path / "h.flac")
    harmonic = EmbeddingAnalyzer(_settings(tmp_path, model=HARMONIC_MODEL, fallback=False, patches_per_track=2))
    pool = EmbeddingAnalyzer(_settings(tmp_path, model=POOL_MODEL, fallback=False, patches_per_track=2))
    first, second, plain = (analyze_file(path, [a]).results["embedding"] for a in (harmonic, harmonic, pool))
    assert isinstance(first, EmbeddingResult)
    assert isinstance(second, EmbeddingResult)
    assert isinstance(plain, EmbeddingResult)
    halves = np.linalg.norm(first.vector.reshape(2, 753), axis=1)
    assert (first.model, harmonic.dim, first.vector.shape) == (HARMONIC_MODEL, 1506, (1506,))
    np.testing.assert_allclose(halves, [2**-0.5, 2**-0.5], rtol=1e-5)
    np.testing.assert_array_equal(first.vector, second.vector)
    assert first.tags == plain.tags  # tags come from MSD_musicnn on the full patches, whatever the model
    np.testing.assert_allclose(first.vector[:753] * 2**0.5, plain.vector, atol=1e-6)  # the MSD half is POOL_MODEL's
    assert float(first.vector[:753] @ first.vector[753:]) * 2 < 0.9999  # the MTT harmonic half is something else


def test_the_harmonic_model_without_the_mtt_weights_fails_naming_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    package = musicnn_weights._package_dir()
    assert package is not None
    _cache_copy(tmp_path / "models", musicnn_weights.locate(None))  # MSD only, in the model cache
    monkeypatch.setattr(musicnn_weights, "_package_dir", lambda: None)
    analyzer = EmbeddingAnalyzer(
        _settings(tmp_path, model=HARMONIC_MODEL, fallback=False, model_dir=tmp_path / "models")
    )
    with pytest.raises(FatalAnalyzerError, match=r"MusiCNN weights not found.*MTT_musicnn"):
        analyzer.check()
