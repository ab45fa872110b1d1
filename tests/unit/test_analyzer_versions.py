"""Analyzer versions are known without importing the analyzers (status, sync and the API only need the numbers)."""

from __future__ import annotations

import json
import subprocess
import sys

from sidecar.analyzers.registry import FACTORIES
from sidecar.analyzers.versions import VERSIONS
from sidecar.settings import Settings


def test_every_buildable_analyzer_has_a_version() -> None:
    assert set(VERSIONS) == set(FACTORIES)


def test_enabled_versions_imports_no_analyzer() -> None:
    code = (
        "import json, sys\n"
        "from sidecar.analyzers.versions import enabled_versions\n"
        "from sidecar.settings import Settings\n"
        "versions = enabled_versions(Settings())\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'scipy', 'librosa', 'torch')"
        " or m.startswith('sidecar.analyzers.') and m != 'sidecar.analyzers.versions')\n"
        "print(json.dumps({'versions': versions, 'heavy': heavy}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    reported = json.loads(out.stdout)
    assert reported == {"versions": {name: VERSIONS[name] for name in Settings().analysis.enabled}, "heavy": []}
