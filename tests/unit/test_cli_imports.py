"""The command line starts without the heavy libraries: ``--help``, ``--version`` and ``config`` import none of them.

Checked in a fresh interpreter (modules other tests imported would hide a regression).
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY_LIBRARIES = (
    "numpy",
    "scipy",
    "librosa",
    "torch",
    "sklearn",
    "fastapi",
    "starlette",
    "uvicorn",
    "sidecar.analyzers.registry",
)
"""What no command that neither analyses audio nor serves the API may import."""
HEAVY = (*HEAVY_LIBRARIES, "sidecar.api", "psycopg", "redis", "httpx")
"""What a command that does not touch the database or a host may not import either."""

_PROBE = """
import json, sys
import typer.main
from typer.testing import CliRunner

def loaded():
    return sorted(m for m in HEAVY if m in sys.modules)

import sidecar.cli
stages = {"import": loaded()}

def paths(command, path=()):
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += paths(sub, (*path, name))
    return found

runner = CliRunner()
for path in paths(typer.main.get_command(sidecar.cli.app)):
    result = runner.invoke(sidecar.cli.app, [*path, "--help"])
    assert result.exit_code == 0, (path, result.output)
stages["every --help"] = loaded()
for argv in (["--version"], ["config"]):
    result = runner.invoke(sidecar.cli.app, argv)
    assert result.exit_code == 0, (argv, result.output)
    stages[" ".join(argv)] = loaded()
print(json.dumps(stages))
"""


def test_help_version_and_config_import_no_heavy_library() -> None:
    code = f"HEAVY = {HEAVY!r}\n{_PROBE}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    stages = json.loads(out.stdout)
    assert stages == {"import": [], "every --help": [], "--version": [], "config": []}
