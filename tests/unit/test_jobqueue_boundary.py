"""Only ``sidecar/jobqueue/`` imports redis (§H.6; the rule import-linter cannot state for modules not yet written)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_redis_is_imported_only_by_the_jobqueue_package() -> None:
    jobqueue = REPO_ROOT / "sidecar" / "jobqueue"
    sources = [*(REPO_ROOT / "sidecar").rglob("*.py"), *(REPO_ROOT / "adapters").rglob("*.py")]

    offenders = sorted(
        str(path.relative_to(REPO_ROOT))
        for path in sources
        if jobqueue not in path.parents and "redis" in imported_roots(path)
    )
    inside = [path for path in jobqueue.rglob("*.py") if "redis" in imported_roots(path)]

    assert offenders == []
    assert inside  # the scan itself works: the queue package does import redis
