"""docs/deploy.md names only what the other deploy tests render or validate, and its k3s steps fit together:
the Secret it creates has every key the manifests and the chart read, the claim and service names match."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.settings import DatabaseSettings
from tests.deploy.manifests import (
    CASES,
    CHART,
    COMPOSE_FILES,
    KUBERNETES_MINORS,
    ROOT,
    case_values,
    objects,
    render_case,
    restricted_violations,
    validate,
    workloads,
)

DOC = (ROOT / "docs" / "deploy.md").read_text()
K3S = ROOT / "deploy" / "k3s"
NAMESPACE = "media"


def shell_blocks() -> str:
    """The shell commands of the page, continuation lines joined."""
    blocks = re.findall(r"```sh\n(.*?)```", DOC, re.DOTALL)
    return re.sub(r"\\\n\s*", " ", "\n".join(blocks))


def k3s_objects(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K3S / name).read_text()) if doc]


def created_secret_keys() -> set[str]:
    (command,) = [line for line in shell_blocks().splitlines() if "create secret generic sonantica" in line]
    assert f"-n {NAMESPACE} " in command
    return set(re.findall(r"--from-literal=([a-z-]+)=", command))


def test_every_file_the_page_names_exists_and_is_tested() -> None:
    named = set(re.findall(r"(?:deploy|docs)/[\w./-]+\.(?:ya?ml|md)|(?<![\w/])[\w-]+\.yml\b", DOC))
    tested = {f"deploy/helm/sonantica/ci/{case}-values.yaml" for case in CASES}
    tested |= {f"deploy/k3s/{p.name}" for p in K3S.glob("*.yaml")}
    tested |= set(COMPOSE_FILES)
    bare_ci = set(re.findall(r"`(\w[\w-]*-values\.yaml)`", DOC))
    assert bare_ci <= {f"{case}-values.yaml" for case in CASES}
    assert named <= tested, named - tested
    for path in named & tested:
        assert (ROOT / path).exists() or (ROOT / "deploy" / "compose" / path).exists(), path


def test_the_values_shown_are_exactly_the_navidrome_case() -> None:
    (shown,) = re.findall(r"```yaml\n(.*?)```", DOC, re.DOTALL)
    assert yaml.safe_load(shown) == case_values("navidrome")
    assert (CHART / "ci" / "navidrome-values.yaml").exists()


def test_commands_use_the_tested_files_and_names() -> None:
    commands = shell_blocks()
    assert (
        f"helm install sonantica deploy/helm/sonantica -n {NAMESPACE} -f deploy/helm/sonantica/ci/navidrome-values.yaml"
        in commands
    )
    for line in commands.splitlines():
        if line.strip().startswith("docker compose"):
            assert set(re.findall(r"-f (\S+)", line)) <= set(COMPOSE_FILES), line
        if "kubectl" in line and " apply " in line:
            (path,) = re.findall(r"-f (\S+)", line)
            assert (ROOT / path).parent == K3S, line
    assert "cp .env.example .env" in commands
    assert "cp sonantica.env.example sonantica.env" in commands


@pytest.mark.parametrize("name", ["postgres.yaml", "music.yaml"])
def test_k3s_manifests_are_valid(name: str) -> None:
    objs = k3s_objects(name)
    assert objs
    for minor in KUBERNETES_MINORS:
        for obj in objs:
            validate(obj, minor)


def test_k3s_postgres_passes_pod_security_restricted() -> None:
    (statefulset,) = [o for o in k3s_objects("postgres.yaml") if o["kind"] == "StatefulSet"]
    assert restricted_violations("postgres", statefulset["spec"]["template"]["spec"]) == []


def _bytes(quantity: str) -> int:
    """A memory size in binary units, Kubernetes's (``2Gi``) or PostgreSQL's (``128MB``), as bytes."""
    match = re.fullmatch(r"(\d+)(Mi|Gi|MB|GB)", quantity)
    assert match, quantity
    return int(match[1]) * 1024 ** (2 if match[2][0] == "M" else 3)


def test_k3s_postgres_has_shared_memory_for_the_workers_parallel_index_build() -> None:
    """A parallel HNSW build takes all of maintenance_work_mem in /dev/shm at once (the runtime gives 64 MB); a
    memory-backed volume counts against the container's limit, beside shared_buffers."""
    (statefulset,) = [o for o in k3s_objects("postgres.yaml") if o["kind"] == "StatefulSet"]
    spec = statefulset["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert volume["emptyDir"]["medium"] == "Memory"
    build_mb = DatabaseSettings().index_build_memory_mb
    shm_bytes = _bytes(volume["emptyDir"]["sizeLimit"])
    assert shm_bytes > build_mb * 1024**2
    assert container["args"][:1] + container["args"][1::2] == ["postgres", "-c", "-c", "-c"]
    settings = dict(arg.split("=") for arg in container["args"][2::2])
    assert set(settings) == {"shared_buffers", "effective_cache_size", "maintenance_work_mem"}
    assert _bytes(container["resources"]["limits"]["memory"]) > shm_bytes + _bytes(settings["shared_buffers"])


def test_the_secret_has_every_key_the_steps_read() -> None:
    keys = created_secret_keys()
    (statefulset,) = [o for o in k3s_objects("postgres.yaml") if o["kind"] == "StatefulSet"]
    env = statefulset["spec"]["template"]["spec"]["containers"][0]["env"]
    postgres_refs = {e["valueFrom"]["secretKeyRef"]["key"] for e in env if "valueFrom" in e}
    assert postgres_refs <= keys
    required_by_chart = set()
    for spec in workloads(objects(render_case("navidrome"))).values():
        for container in spec["containers"]:
            for e in container.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] == "sonantica" and not ref.get("optional"):
                    required_by_chart.add(ref["key"])
    assert required_by_chart == {"database-url"}
    assert required_by_chart | {"navidrome-password"} <= keys


def test_the_database_url_points_at_the_postgres_service() -> None:
    (service,) = [o for o in k3s_objects("postgres.yaml") if o["kind"] == "Service"]
    (statefulset,) = [o for o in k3s_objects("postgres.yaml") if o["kind"] == "StatefulSet"]
    env = {e["name"]: e.get("value") for e in statefulset["spec"]["template"]["spec"]["containers"][0]["env"]}
    (url,) = re.findall(r"database-url='([^']+)'", shell_blocks())
    assert re.fullmatch(
        rf"postgresql://{env['POSTGRES_USER']}:[^@]+@{service['metadata']['name']}:5432/{env['POSTGRES_DB']}", url
    )


def test_the_library_claim_is_the_one_the_chart_mounts_read_only() -> None:
    claim = next(o for o in k3s_objects("music.yaml") if o["kind"] == "PersistentVolumeClaim")
    volume = next(o for o in k3s_objects("music.yaml") if o["kind"] == "PersistentVolume")
    assert claim["metadata"]["name"] == case_values("navidrome")["library"]["existingClaim"]
    assert volume["spec"]["claimRef"] == {"namespace": NAMESPACE, "name": claim["metadata"]["name"]}
    assert claim["spec"]["volumeName"] == volume["metadata"]["name"]
    assert claim["spec"]["accessModes"] == volume["spec"]["accessModes"] == ["ReadOnlyMany"]


def test_notes_and_doc_agree_on_the_token_secret_and_webhook() -> None:
    assert "sonantica-auth" in DOC
    assert "http://sonantica-api.media.svc:8787/hooks/jellyfin" in DOC
    assert Path(ROOT / "deploy" / "compose" / "media-network.yml").read_text().count("sonantica-api") >= 1
