"""The worker's start-up check of its analyzers runs in a child process, so its main process never loads a model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.analyzers.embedding.analyzer import OPENL3_MODEL, EmbeddingAnalyzer
from sidecar.analyzers.executor import probe_analyzers
from sidecar.analyzers.registry import build_analyzers
from sidecar.analyzers.versions import enabled_versions
from sidecar.errors import FatalAnalyzerError
from sidecar.settings import EmbeddingSettings, Settings

PROBE = """
import json, sys
from sidecar.analyzers.embedding.analyzer import OPENL3_MODEL, EmbeddingAnalyzer
from sidecar.analyzers.executor import probe_analyzers
from sidecar.settings import Settings
probe = probe_analyzers(Settings(data_dir=sys.argv[1]))
print(json.dumps({"versions": probe.versions, "models": [[m.model, m.dim] for m in probe.models],
                  "torch_loaded_here": "torch" in sys.modules}))
"""


def test_probe_reports_every_analyzer_and_the_model_without_loading_it_here(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "data")], capture_output=True, text=True, timeout=300, check=True
    )
    reported = json.loads(done.stdout.strip().splitlines()[-1])
    (embedding,) = build_analyzers(settings, ["embedding"])
    assert isinstance(embedding, EmbeddingAnalyzer)
    assert reported["versions"] == enabled_versions(settings)
    assert reported["models"] == [[embedding.model, embedding.dim]]
    assert reported["torch_loaded_here"] is False


def test_a_failing_check_in_the_child_is_raised_here(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        embedding=EmbeddingSettings.model_validate({"model": OPENL3_MODEL, "fallback": False}),
    )
    with pytest.raises(FatalAnalyzerError, match="sonantica models fetch"):
        probe_analyzers(settings)
