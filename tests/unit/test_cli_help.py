"""Every ``sonantica`` command's ``--help`` runs and reads as text (no reStructuredText markup shown to users)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from sidecar.cli import app


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """``path`` and the paths of every sub-command under it (typer ships its own click: duck-typed)."""
    paths = [path]
    for name, sub in getattr(command, "commands", {}).items():
        paths += _command_paths(sub, (*path, name))
    return paths


COMMANDS = _command_paths(typer.main.get_command(app))


def test_every_command_is_found() -> None:
    assert {("analyze",), ("host", "sync"), ("models", "import"), ("stems", "evict")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "sonantica")
def test_help_runs_and_shows_no_rst_markup(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: sonantica" in result.output
    assert "``" not in result.output


def test_version_prints_the_installed_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"sonantica {metadata.version('sonantica')}"
