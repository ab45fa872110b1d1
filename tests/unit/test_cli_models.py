"""``sonantica models fetch|import --model``: a mistyped model name is called unknown, not "needs no weights"."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sidecar.cli import app


@pytest.mark.parametrize("command", ["fetch", "import /tmp/weights.h5.gz"])
def test_an_unknown_model_is_named_unknown(command: str) -> None:
    result = CliRunner().invoke(app, ["models", *command.split(), "--model", "openl3-typo"])
    assert result.exit_code == 2
    said = " ".join(result.stderr.replace("│", " ").split())
    assert "unknown embedding model 'openl3-typo'; models: musicnn-msd-mtt-harmonic-pool-ln-1506," in said
    assert "needs no weights" not in said


def test_a_musicnn_model_says_its_weights_come_with_the_package() -> None:
    result = CliRunner().invoke(app, ["models", "fetch", "--model", "musicnn-msd-pool-753"])
    assert result.exit_code == 2
    said = " ".join(result.stderr.replace("│", " ").split())
    assert "musicnn-msd-pool-753 needs no weights to download: they come with the musicnn package" in said
