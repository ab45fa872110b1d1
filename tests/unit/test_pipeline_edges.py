"""Every analyzer gives a defined result (never an exception) on the inputs real libraries contain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from sidecar.analyzers.pipeline import analyze_file
from sidecar.analyzers.registry import CORE_ANALYZERS, build_analyzers
from sidecar.analyzers.versions import VERSIONS
from sidecar.demo.encode import write_audio
from sidecar.demo.music import PieceSpec, render
from sidecar.domain import KeyResult, KeySignature, LoudnessResult, TempoResult
from sidecar.errors import FatalAnalyzerError
from sidecar.settings import get_settings


def _music(rate: int, channels: int, seconds: float) -> npt.NDArray[np.float32]:
    spec = PieceSpec(title="e", bpm=100.0, key=KeySignature("D", "major"), groove="rock", duration_s=seconds, seed=9)
    stereo = render(spec)
    mono = stereo.mean(axis=1)
    n_out = int(len(mono) * rate / 44100)
    resampled = np.interp(np.linspace(0, len(mono) - 1, n_out), np.arange(len(mono)), mono).astype(np.float32)
    return np.repeat(resampled[:, None], channels, axis=1)


CASES: dict[str, tuple[npt.NDArray[np.float32], int]] = {
    "silence": (np.zeros((44100 * 5, 2), np.float32), 44100),
    "0.2 s": (_music(44100, 2, 1.0)[: int(0.2 * 44100)], 44100),
    "mono": (_music(44100, 1, 8.0), 44100),
    "6 channels": (_music(48000, 6, 8.0), 48000),
    "8 kHz": (_music(8000, 1, 8.0), 8000),
    "192 kHz": (_music(192000, 2, 8.0), 192000),
    "DC offset": (np.full((44100 * 5, 2), 0.25, np.float32), 44100),
    "clipping": (np.clip(_music(44100, 2, 8.0) * 8.0, -1.0, 1.0), 44100),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_pipeline_defined_result_for_edge_input(tmp_path: Path, case: str) -> None:
    samples, rate = CASES[case]
    path = write_audio(samples, rate, tmp_path / "edge.wav", format_name="wav")
    analysis = analyze_file(path, build_analyzers(get_settings(), CORE_ANALYZERS))
    assert analysis.error is None
    assert analysis.failures == {}
    assert isinstance(analysis.results["loudness"], LoudnessResult)
    assert isinstance(analysis.results["tempo"], TempoResult)
    assert isinstance(analysis.results["key"], KeyResult)
    assert analysis.decoded_duration_s == pytest.approx(len(samples) / rate, abs=1e-3)
    tempo = analysis.results["tempo"]
    assert tempo.bpm is None or 30.0 <= tempo.bpm <= 300.0
    assert 0.0 <= tempo.bpm_confidence <= 1.0


def test_pipeline_silence_has_no_tempo_key_or_loudness(tmp_path: Path) -> None:
    samples, rate = CASES["silence"]
    path = write_audio(samples, rate, tmp_path / "s.wav", format_name="wav")
    results = analyze_file(path, build_analyzers(get_settings(), CORE_ANALYZERS)).results
    loudness, tempo, key = results["loudness"], results["tempo"], results["key"]
    assert isinstance(loudness, LoudnessResult)
    assert loudness.loudness_lufs is None
    assert isinstance(tempo, TempoResult)
    assert tempo.bpm is None
    assert isinstance(key, KeyResult)
    assert key.key is None


def test_pipeline_clipping_reads_full_scale_peak(tmp_path: Path) -> None:
    samples, rate = CASES["clipping"]
    path = write_audio(samples, rate, tmp_path / "c.wav", format_name="wav")
    loudness = analyze_file(path, build_analyzers(get_settings(), ["loudness"])).results["loudness"]
    assert isinstance(loudness, LoudnessResult)
    assert loudness.sample_peak_dbfs is not None
    assert loudness.sample_peak_dbfs == pytest.approx(0.0, abs=0.01)
    assert loudness.true_peak_dbtp is not None
    assert loudness.true_peak_dbtp >= -0.01


def test_registry_names_and_versions_are_stable() -> None:
    analyzers = build_analyzers(get_settings(), CORE_ANALYZERS)
    assert [a.name for a in analyzers] == ["loudness", "tempo", "key"]
    assert all(VERSIONS[a.name] == a.version >= 1 for a in analyzers)


def test_registry_refuses_unknown_analyzer() -> None:
    with pytest.raises(FatalAnalyzerError, match="unknown analyzer"):
        build_analyzers(get_settings(), ["tempo", "vibes"])
