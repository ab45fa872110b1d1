"""EmbeddingAnalyzer: model resolution (weights, fallback, start-up error) and full runs over decoded files."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import h5py
import numpy as np
import pytest

from sidecar.analyzers.base import Analyzer
from sidecar.analyzers.embedding import MODEL_DIMS, MODELS, OPENL3_MODEL, TIMBRE_MODEL, EmbeddingAnalyzer
from sidecar.analyzers.embedding.weights import import_weights
from sidecar.analyzers.pipeline import analyze_file
from sidecar.analyzers.registry import build_analyzers
from sidecar.demo.encode import write_audio
from sidecar.domain import EmbeddingResult
from sidecar.errors import FatalAnalyzerError
from sidecar.settings import EmbeddingSettings, Settings
from tests.unit.embedding.keras_files import LEGACY_NAMES, WeightsFixture, WeightsServer, spec_for, write_keras_h5


def _settings(tmp_path: Path, **embedding: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", embedding=EmbeddingSettings.model_validate(embedding))


def _tone_file(path: Path, *, seconds: float, rate_hz: int = 44100, gain: float = 0.3) -> Path:
    t = np.arange(round(seconds * rate_hz)) / rate_hz
    signal = gain * (np.sin(2 * np.pi * 330 * t) + 0.3 * np.sin(2 * np.pi * 990 * t)) * (1 + np.sin(2 * np.pi * t))
    noise = 0.01 * np.random.default_rng(0).standard_normal(t.size)
    return write_audio((signal + noise).astype(np.float32)[:, None] / 2, rate_hz, path)


def _embedding(result: object) -> EmbeddingResult:
    assert isinstance(result, EmbeddingResult)
    return result


def test_embedding_analyzer_satisfies_the_analyzer_protocol(tmp_path: Path) -> None:
    assert isinstance(EmbeddingAnalyzer(_settings(tmp_path)), Analyzer)


def test_embedding_analyzer_models_lists_every_name_with_its_dim_default_first() -> None:
    assert (MODELS, MODEL_DIMS) == (
        (
            "musicnn-msd-mtt-harmonic-pool-ln-1506",
            "musicnn-msd-mtt-harmonic-pool-1506",
            "musicnn-msd-pool-753",
            "musicnn-msd-taggram-50",
            "openl3-music-mel128-512",
            "timbre-v1",
        ),
        {
            "musicnn-msd-mtt-harmonic-pool-ln-1506": 1506,
            "musicnn-msd-mtt-harmonic-pool-1506": 1506,
            "musicnn-msd-pool-753": 753,
            "musicnn-msd-taggram-50": 50,
            "openl3-music-mel128-512": 512,
            "timbre-v1": 109,
        },
    )
    assert MODELS[0] == Settings().embedding.model


def test_embedding_analyzer_is_built_by_the_registry_for_the_configured_model(tmp_path: Path) -> None:
    analyzers = build_analyzers(_settings(tmp_path, model="timbre-v1"), ["embedding"])
    assert [(a.name, a.version, getattr(a, "model", None)) for a in analyzers] == [("embedding", 4, "timbre-v1")]


def test_openl3_analyzer_on_random_weights_gives_a_unit_512_vector(
    tmp_path: Path, random_weights: WeightsFixture
) -> None:
    settings = _settings(tmp_path, model=OPENL3_MODEL, fallback=False, windows_per_track=5, batch_size=2, device="cpu")
    import_weights(random_weights.spec, random_weights.path, settings.model_dir)
    analyzer = EmbeddingAnalyzer(settings, weights=random_weights.spec)
    analyzer.check()
    result = _embedding(analyze_file(_tone_file(tmp_path / "t.flac", seconds=12.0), [analyzer]).results["embedding"])
    assert (result.model, result.vector.shape, round(float(np.linalg.norm(result.vector)), 5), analyzer.dim) == (
        OPENL3_MODEL,
        (512,),
        1.0,
        512,
    )


def test_openl3_analyzer_does_not_depend_on_the_level(tmp_path: Path, random_weights: WeightsFixture) -> None:
    settings = _settings(tmp_path, model=OPENL3_MODEL, fallback=False, windows_per_track=4, device="cpu")
    import_weights(random_weights.spec, random_weights.path, settings.model_dir)
    analyzer = EmbeddingAnalyzer(settings, weights=random_weights.spec)
    loud = _tone_file(tmp_path / "loud.flac", seconds=6.0, gain=0.4)
    quiet = _tone_file(tmp_path / "quiet.flac", seconds=6.0, gain=0.2)
    a, b = (_embedding(analyze_file(p, [analyzer]).results["embedding"]).vector for p in (loud, quiet))
    assert float(a @ b) > 0.999


def test_openl3_analyzer_handles_a_track_shorter_than_one_window(
    tmp_path: Path, random_weights: WeightsFixture
) -> None:
    settings = _settings(tmp_path, model=OPENL3_MODEL, fallback=False, device="cpu")
    import_weights(random_weights.spec, random_weights.path, settings.model_dir)
    analyzer = EmbeddingAnalyzer(settings, weights=random_weights.spec)
    result = analyze_file(_tone_file(tmp_path / "short.flac", seconds=0.4), [analyzer]).results["embedding"]
    assert _embedding(result).vector.shape == (512,)


@pytest.mark.parametrize("fallback", [True, False])
def test_openl3_analyzer_start_up_never_downloads_the_weights(
    tmp_path: Path, random_weights: WeightsFixture, weights_server: WeightsServer, fallback: bool
) -> None:
    url = weights_server.serve("/w.h5.gz", random_weights.path.read_bytes())
    spec = dataclasses.replace(random_weights.spec, url=url)
    analyzer = EmbeddingAnalyzer(_settings(tmp_path, model=OPENL3_MODEL, fallback=fallback, device="cpu"), weights=spec)
    if fallback:
        analyzer.check()
        outcome = analyzer.model
    else:
        with pytest.raises(FatalAnalyzerError, match="sonantica models fetch") as caught:
            analyzer.check()
        outcome = type(caught.value).__name__
    assert (outcome, weights_server.requests) == (TIMBRE_MODEL if fallback else "FatalAnalyzerError", [])


def test_openl3_analyzer_without_weights_and_without_fallback_fails_at_start_up(
    tmp_path: Path, random_weights: WeightsFixture
) -> None:
    analyzer = EmbeddingAnalyzer(_settings(tmp_path, model=OPENL3_MODEL, fallback=False), weights=random_weights.spec)
    with pytest.raises(FatalAnalyzerError, match=r"sonantica models fetch.*sonantica models import FILE"):
        analyzer.check()


def test_openl3_analyzer_without_weights_falls_back_to_timbre(tmp_path: Path, random_weights: WeightsFixture) -> None:
    analyzer = EmbeddingAnalyzer(_settings(tmp_path, model=OPENL3_MODEL, fallback=True), weights=random_weights.spec)
    analyzer.check()
    result = analyze_file(_tone_file(tmp_path / "t.flac", seconds=5.0), [analyzer]).results["embedding"]
    assert (analyzer.model, _embedding(result).model) == (TIMBRE_MODEL, TIMBRE_MODEL)


def test_timbre_analyzer_needs_no_weights_and_gives_a_unit_vector(tmp_path: Path) -> None:
    analyzer = EmbeddingAnalyzer(_settings(tmp_path, model="timbre-v1", fallback=False))
    result = _embedding(analyze_file(_tone_file(tmp_path / "t.flac", seconds=5.0), [analyzer]).results["embedding"])
    assert (result.model, result.vector.shape, round(float(np.linalg.norm(result.vector)), 5)) == (
        TIMBRE_MODEL,
        (109,),
        1.0,
    )


def test_embedding_analyzer_cuda_without_a_gpu_is_a_start_up_error(
    tmp_path: Path, random_weights: WeightsFixture
) -> None:
    import torch

    settings = _settings(tmp_path, fallback=False, device="cuda")
    import_weights(random_weights.spec, random_weights.path, settings.model_dir)
    analyzer = EmbeddingAnalyzer(settings, weights=random_weights.spec)
    if torch.cuda.is_available():
        analyzer.check()
        assert analyzer.model == OPENL3_MODEL
    else:
        with pytest.raises(FatalAnalyzerError, match="no CUDA device"):
            analyzer.check()


def test_embedding_analyzer_check_rejects_weights_that_do_not_fit_the_network(tmp_path: Path) -> None:
    h5_path = tmp_path / "small.h5"
    write_keras_h5(h5_path, names=LEGACY_NAMES, seed=9)
    with h5py.File(h5_path, "a") as h5:
        h5.attrs["layer_names"] = h5.attrs["layer_names"][:-1]  # drop audio_embedding_layer
    gz_path = tmp_path / "w.h5.gz"
    gz_path.write_bytes(gzip.compress(h5_path.read_bytes()))
    spec = spec_for(gz_path)
    settings = _settings(tmp_path, model=OPENL3_MODEL, fallback=True, device="cpu")
    import_weights(spec, gz_path, settings.model_dir)
    with pytest.raises(FatalAnalyzerError, match=r"15 layers with weights, the network 16.*sonantica models fetch"):
        EmbeddingAnalyzer(settings, weights=spec).check()
