"""``sonantica embed`` and ``sonantica models``, run through the real command line application."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sidecar.cli import app
from sidecar.demo.encode import write_audio
from tests.unit.embedding.keras_files import WeightsFixture, WeightsServer

runner = CliRunner()


def _noise_file(path: Path, seconds: float = 3.0) -> Path:
    samples = 0.1 * np.random.default_rng(1).standard_normal((round(seconds * 44100), 2))
    return write_audio(samples.astype(np.float32), 44100, path)


def test_embed_json_prints_one_object_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SONANTICA_EMBEDDING__MODEL", "timbre-v1")
    files = [_noise_file(tmp_path / "a.flac"), _noise_file(tmp_path / "b.flac", 2.0)]
    result = runner.invoke(app, ["embed", "--json", *map(str, files)])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["path"], r["model"], len(r["embedding"])) for r in rows] == [
        (str(files[0]), "timbre-v1", 109),
        (str(files[1]), "timbre-v1", 109),
    ]


def test_embed_reports_an_undecodable_file_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"not audio")
    result = runner.invoke(app, ["embed", "--json", "--model", "timbre-v1", str(bad)])
    row = json.loads(result.stdout)
    assert (result.exit_code, row["path"], "error" in row) == (1, str(bad), True)


def test_embed_without_weights_and_without_fallback_exits_2_naming_the_commands(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SONANTICA_EMBEDDING__FALLBACK", "false")
    monkeypatch.setenv("SONANTICA_EMBEDDING__MODEL", "openl3-music-mel128-512")
    result = runner.invoke(app, ["embed", str(_noise_file(tmp_path / "a.flac"))])
    assert (result.exit_code, "sonantica models fetch" in result.stderr) == (2, True)


def test_embed_with_an_explicit_openl3_model_and_no_weights_fails_instead_of_falling_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SONANTICA_EMBEDDING__FALLBACK", "true")
    audio = _noise_file(tmp_path / "a.flac")
    result = runner.invoke(app, ["embed", "--json", "--model", "openl3-music-mel128-512", str(audio)])
    assert (result.exit_code, result.stdout, "weights for openl3-music-mel128-512 are missing" in result.stderr) == (
        2,
        "",
        True,
    )


def test_models_list_shows_missing_weights_and_the_cache(tmp_path: Path) -> None:
    result = runner.invoke(app, ["models", "list"])
    assert (result.exit_code, "  openl3-music-mel128-512: weights missing" in result.stdout) == (0, True)


def test_models_list_marks_the_default_musicnn_model_with_both_verified_wheel_checkpoints() -> None:
    result = runner.invoke(app, ["models", "list"])
    lines = [line for line in result.stdout.splitlines() if "musicnn-msd-mtt-harmonic-pool-ln-1506" in line]
    assert (result.exit_code, len(lines)) == (0, 1)
    assert lines[0].startswith("* musicnn-msd-mtt-harmonic-pool-ln-1506: weights ok:")
    assert ("MSD_musicnn" in lines[0], "MTT_musicnn" in lines[0], lines[0].count("weights ok")) == (True, True, 2)


def test_models_import_rejects_a_file_that_is_not_the_official_one(
    tmp_path: Path, random_weights: WeightsFixture
) -> None:
    result = runner.invoke(app, ["models", "import", str(random_weights.path)])
    assert (result.exit_code, "is not the official openl3_audio_mel128_music-v0_4_0.h5.gz" in result.stderr) == (
        1,
        True,
    )


def test_models_fetch_from_a_mirror_with_wrong_bytes_is_a_checksum_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, random_weights: WeightsFixture, weights_server: WeightsServer
) -> None:
    url = weights_server.serve("/mirror/openl3.h5.gz", random_weights.path.read_bytes())
    monkeypatch.setenv("SONANTICA_EMBEDDING__WEIGHTS_URL", url)
    monkeypatch.setenv("SONANTICA_EMBEDDING__MODEL_DIR", str(tmp_path / "models"))
    result = runner.invoke(app, ["models", "fetch"])
    assert (result.exit_code, "git blob SHA-1" in result.stderr, list((tmp_path / "models").iterdir())) == (
        1,
        True,
        [],
    )


def test_models_fetch_of_a_model_without_weights_is_a_usage_error() -> None:
    result = runner.invoke(app, ["models", "fetch", "--model", "timbre-v1"])
    assert (result.exit_code, "needs no weights" in result.output) == (2, True)


def test_command_line_starts_without_importing_pytorch() -> None:
    code = "import sys, sidecar.cli, sidecar.analyzers.registry; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
