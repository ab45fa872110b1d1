"""The configuration reference in docs/ is exactly what the code reads."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from sidecar.cli import app
from sidecar.cli.config import configuration_markdown
from sidecar.settings import environment_variable_names, settings_reference

ROOT = Path(__file__).resolve().parents[2]


def test_config_doc_is_generated_from_settings() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == configuration_markdown()


def test_config_reference_covers_every_variable_with_a_meaning() -> None:
    rows = settings_reference()
    assert {name for name, _, _ in rows} == environment_variable_names()
    assert all(text for _, _, text in rows)


def test_config_command_lists_variables() -> None:
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0
    assert "SONANTICA_WORKER__LEASE_S" in result.stdout
    assert "30.0" in result.stdout
