"""Compose file and Helm chart: schema-valid, rendered manifests valid for Kubernetes, and consistent with the code.

Docker and a cluster do not run here, so the files are checked by rendering and validation: the compose file
against the Compose Specification (compose-spec), the chart with Helm's own SDK (helm-python-sdk: lint, schema,
render) and every rendered manifest against the Kubernetes API schemas (kubernetes-validate).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import compose_spec
import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from sidecar.settings import environment_variable_names

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose"
CHART = ROOT / "deploy" / "helm" / "sonantica"
SIDECAR_SERVICES = ("migrate", "api", "worker", "scheduler")
KUBERNETES_VERSIONS = ("1.27.0", "1.31.0")
REQUIRED_VALUES: dict[str, Any] = {
    "library": {"existingClaim": "music"},
    "host": {"kind": "navidrome", "url": "http://navidrome:4533", "username": "sonantica", "existingSecret": "s"},
}

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose-style ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` substitution over a loaded document."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        if env.get(name):
            return env[name]
        if op == ":?":
            raise ValueError(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return _VARIABLE.sub(substitute, value)


def load_compose() -> dict[str, Any]:
    document = yaml.safe_load((COMPOSE / "compose.yml").read_text())
    return {key: value for key, value in document.items() if not key.startswith("x-")}


COMPOSE_ENV = {"POSTGRES_PASSWORD": "secret", "MUSIC_DIR": "/srv/music"}


def test_compose_matches_the_compose_specification() -> None:
    document = interpolate(load_compose(), COMPOSE_ENV)
    spec = compose_spec.ComposeSpecification.model_validate(document)
    compose_spec.PyCompose.from_json(json.dumps(document)).validate()
    assert set(spec.services or {}) == {*SIDECAR_SERVICES, "postgres", "redis"}


def test_compose_validation_rejects_a_broken_file() -> None:
    document = interpolate(load_compose(), COMPOSE_ENV)
    broken = copy.deepcopy(document)
    broken["services"]["api"]["depends_on"]["redis"]["condition"] = "whenever"
    with pytest.raises(ValueError, match="condition"):
        compose_spec.ComposeSpecification.model_validate(broken)


@pytest.mark.parametrize("missing", sorted(COMPOSE_ENV))
def test_compose_required_variables_fail_loudly(missing: str) -> None:
    env = {k: v for k, v in COMPOSE_ENV.items() if k != missing}
    with pytest.raises(ValueError, match=f"{missing}: Variable not set"):
        interpolate(load_compose(), env)


def test_compose_sidecar_services_share_one_image_and_mount_the_library_read_only() -> None:
    services = interpolate(load_compose(), COMPOSE_ENV)["services"]
    images = {services[name]["image"] for name in SIDECAR_SERVICES}
    assert len(images) == 1
    for name in SIDECAR_SERVICES:
        music = [v for v in services[name]["volumes"] if v.split(":")[1] == "/music"]
        assert music == ["/srv/music:/music:ro"], name
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker", "scheduler"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_environment_names_are_settings_the_code_reads() -> None:
    services = load_compose()["services"]
    names = {n for s in SIDECAR_SERVICES for n in services[s].get("environment", {}) if n.startswith("SONANTICA_")}
    example = (COMPOSE / ".env.example").read_text()
    names |= set(re.findall(r"^#?\s*(SONANTICA_[A-Z0-9_]+)=", example, re.MULTILINE))
    unknown = names - environment_variable_names() - {"SONANTICA_IMAGE", "SONANTICA_API_PORT", "SONANTICA_WORKER_CPUS"}
    assert not unknown


def render_chart(values: dict[str, Any]) -> dict[str, str]:
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(values)
        manifests: dict[str, str] = chart.render(values, name="demo", namespace="media")
    return manifests


def rendered_objects(values: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for text in render_chart(values).values():
        for document in yaml.safe_load_all(text):
            if document:
                yield document


def test_chart_lints_without_errors() -> None:
    result = helm.lint(str(CHART))
    assert result["errors"] == []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("kind", ["navidrome", "jellyfin"])
def test_chart_renders_manifests_valid_for_kubernetes(version: str, kind: str) -> None:
    values = copy.deepcopy(REQUIRED_VALUES)
    values["host"]["kind"] = kind
    objects = list(rendered_objects(values))
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["ConfigMap", "Deployment", "Deployment", "Deployment", "Job", "PersistentVolumeClaim", "Service"]
    for document in objects:
        kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"host": REQUIRED_VALUES["host"]}, "library.existingClaim is required"),
        ({"library": {"existingClaim": "m"}, "host": {"kind": "jellyfin", "url": "http://j"}}, "existingSecret"),
        ({**REQUIRED_VALUES, "host": {**REQUIRED_VALUES["host"], "username": ""}}, "host.username is required"),
    ],
)
def test_chart_checks_stop_an_install_with_the_fix_in_the_message(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError, match=message):
        render_chart(values)


@pytest.mark.parametrize(
    "override",
    [{"host": {"kind": "plex"}}, {"worker": {"queues": "fast"}}, {"api": {"port": 0}}, {"unknownKey": 1}],
)
def test_chart_schema_rejects_bad_values(override: dict[str, Any]) -> None:
    values = copy.deepcopy(REQUIRED_VALUES)
    for key, value in override.items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmError):
        chart.validate_schema(chart.merge_values(values))


def _pod_specs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in objects if o["kind"] in ("Deployment", "Job")}


def test_chart_pods_mount_the_library_read_only() -> None:
    for name, pod in _pod_specs(list(rendered_objects(REQUIRED_VALUES))).items():
        library = next(v for v in pod["volumes"] if v["name"] == "library")
        assert library["persistentVolumeClaim"] == {"claimName": "music", "readOnly": True}, name
        mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "library")
        assert mount["readOnly"] is True, name


def test_chart_roles_probes_and_hooks() -> None:
    objects = list(rendered_objects(REQUIRED_VALUES))
    pods = _pod_specs(objects)
    assert {name: pod["containers"][0]["args"] for name, pod in pods.items()} == {
        "demo-sonantica-api": ["serve"],
        "demo-sonantica-worker": ["worker"],
        "demo-sonantica-scheduler": ["scheduler"],
        "demo-sonantica-migrate": ["migrate"],
    }
    api = pods["demo-sonantica-api"]["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert api["startupProbe"]["failureThreshold"] >= 60
    scheduler = next(o for o in objects if o["metadata"]["name"] == "demo-sonantica-scheduler")
    assert scheduler["spec"]["replicas"] == 1
    job = next(o for o in objects if o["kind"] == "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    for o in objects:
        if o["kind"] == "Deployment":
            assert re.fullmatch(r"[0-9a-f]{64}", o["spec"]["template"]["metadata"]["annotations"]["checksum/config"])


def test_chart_environment_names_are_settings_the_code_reads() -> None:
    objects = list(rendered_objects(REQUIRED_VALUES))
    config = next(o for o in objects if o["kind"] == "ConfigMap")["data"]
    names = {n for n in config if n.startswith("SONANTICA_")}
    for pod in _pod_specs(objects).values():
        names |= {e["name"] for e in pod["containers"][0]["env"] if e["name"].startswith("SONANTICA_")}
    assert names
    assert not names - environment_variable_names()
