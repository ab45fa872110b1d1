"""Commands that only read the database (``status``, ``failed``, ``stems list``) run without the analyzers' and
the API's libraries: each is run in a fresh interpreter against this test's PostgreSQL and Redis."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.unit.test_cli_imports import HEAVY_LIBRARIES as HEAVY

_PROBE = """
import json, sys
from typer.testing import CliRunner
from sidecar.cli import app
result = CliRunner().invoke(app, sys.argv[1:])
print(json.dumps({"exit_code": result.exit_code, "output": result.output,
                  "heavy": sorted(m for m in HEAVY if m in sys.modules)}))
"""


def _run(*argv: str) -> dict[str, object]:
    code = f"HEAVY = {HEAVY!r}\n{_PROBE}"
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True, timeout=120)
    reported: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return reported


def test_read_only_commands_import_no_heavy_library(service_env: dict[str, str]) -> None:
    status = _run("status", "--json")
    assert (status["exit_code"], status["heavy"]) == (0, []), status["output"]
    assert set(json.loads(str(status["output"]))["analyzers"]) == {"loudness", "tempo", "key"}
    for argv in (("failed", "--json"), ("stems", "list", "--json")):
        assert _run(*argv) == {"exit_code": 0, "output": "", "heavy": []}
