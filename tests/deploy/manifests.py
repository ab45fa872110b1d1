"""Rendering the Helm chart through Helm's own library, and the checks the deploy tests share.

No cluster runs here: the chart is rendered with helm-python-sdk (Helm v4's Go SDK through a C ABI, the same code
as ``helm template``), and each manifest is read as an operator's cluster would read it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "sonantica"
COMPOSE = ROOT / "deploy" / "compose"
COMPOSE_FILES = ("compose.yml", "gpu.yml", "media-network.yml")
CASES = sorted(p.name.removesuffix("-values.yaml") for p in (CHART / "ci").glob("*-values.yaml"))
# Helm refuses release names over 53 characters; 55 also exercises names the fullname helper must shorten.
LONG_RELEASE = "home-media-server-release-name-of-fifty-five-characters"
assert len(LONG_RELEASE) == 55
RELEASES = ("sonantica", LONG_RELEASE)
NAMESPACE = "media"
# kubernetes-validate reads the same schema files for every document; read each once per test session.
kubernetes_validate.utils.schema_contents = functools.cache(kubernetes_validate.utils.schema_contents)
KUBERNETES_MINORS = tuple(
    sorted(
        {kubernetes_validate.utils.major_minor(v) for v in kubernetes_validate.utils.all_versions()},
        key=lambda v: tuple(int(p) for p in v.split(".")),
    )[-3:]
)
HOOK_PHASES_BEFORE_INSTALL = {"pre-install", "pre-upgrade"}
WORKLOADS = ("Deployment", "Job", "Pod")


def case_values(case: str) -> dict[str, Any]:
    """The values of ``ci/<case>-values.yaml``, parsed by Helm."""
    return helm.values_from_yaml((CHART / "ci" / f"{case}-values.yaml").read_text())


def render(values: dict[str, Any], release: str = "sonantica") -> dict[str, str]:
    """Template path -> rendered text, after checking the merged values against values.schema.json."""
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(chart.merge_values(values))
        manifests: dict[str, str] = chart.render(values, name=release, namespace=NAMESPACE, is_install=True)
    return manifests


@functools.cache
def _render_case(case: str, release: str) -> str:
    return json.dumps(render(case_values(case), release))


def render_case(case: str, release: str = "sonantica") -> dict[str, str]:
    """:func:`render` of one ci case, cached for the session (the returned mapping is a fresh copy)."""
    rendered: dict[str, str] = json.loads(_render_case(case, release))
    return rendered


def objects(manifests: dict[str, str]) -> list[dict[str, Any]]:
    """Every Kubernetes object in the rendered templates (NOTES.txt is text, not an object)."""
    found: list[dict[str, Any]] = []
    for path, text in manifests.items():
        if path.endswith("NOTES.txt"):
            continue
        found.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return found


def notes(manifests: dict[str, str]) -> str:
    return next(text for path, text in manifests.items() if path.endswith("NOTES.txt"))


def by_kind(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]
    return spec


def workloads(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Name -> pod spec of every object that runs pods."""
    return {o["metadata"]["name"]: pod_spec(o) for o in objs if o["kind"] in WORKLOADS}


def component(obj: dict[str, Any]) -> str:
    labels: dict[str, str] = obj["metadata"]["labels"]
    return labels["app.kubernetes.io/component"]


def hook_phases(obj: dict[str, Any]) -> set[str]:
    hook = (obj["metadata"].get("annotations") or {}).get("helm.sh/hook", "")
    return {phase.strip() for phase in hook.split(",") if phase.strip()}


def references(obj: dict[str, Any]) -> set[tuple[str, str]]:
    """``(kind, name)`` of every object a workload needs to exist before its pod can start."""
    spec = pod_spec(obj)
    refs: set[tuple[str, str]] = set()
    if spec.get("serviceAccountName"):
        refs.add(("ServiceAccount", spec["serviceAccountName"]))
    refs |= {("Secret", s["name"]) for s in spec.get("imagePullSecrets", [])}
    for volume in spec.get("volumes", []):
        if "persistentVolumeClaim" in volume:
            refs.add(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]))
        if "configMap" in volume:
            refs.add(("ConfigMap", volume["configMap"]["name"]))
        if "secret" in volume:
            refs.add(("Secret", volume["secret"]["secretName"]))
        for source in volume.get("projected", {}).get("sources", []):
            if "configMap" in source:
                refs.add(("ConfigMap", source["configMap"]["name"]))
            if "secret" in source:
                refs.add(("Secret", source["secret"]["name"]))
    for container in spec.get("initContainers", []) + spec["containers"]:
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                refs.add(("ConfigMap", source["configMapRef"]["name"]))
            if "secretRef" in source:
                refs.add(("Secret", source["secretRef"]["name"]))
        for env in container.get("env", []):
            value_from = env.get("valueFrom", {})
            if "configMapKeyRef" in value_from:
                refs.add(("ConfigMap", value_from["configMapKeyRef"]["name"]))
            if "secretKeyRef" in value_from:
                refs.add(("Secret", value_from["secretKeyRef"]["name"]))
    return refs


def hook_dependency_problems(objs: list[dict[str, Any]]) -> list[str]:
    """Pre-install/pre-upgrade hooks that need an ordinary object of the release: on a first install Helm runs
    those hooks before it creates any ordinary object, so their pods wait forever (and the install hangs)."""
    ordinary = {(o["kind"], o["metadata"]["name"]) for o in objs if not hook_phases(o)}
    problems = []
    for obj in objs:
        if obj["kind"] in WORKLOADS and hook_phases(obj) & HOOK_PHASES_BEFORE_INSTALL:
            problems += [f"{obj['metadata']['name']} needs {kind} {name}" for kind, name in references(obj) & ordinary]
    return sorted(problems)


_ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def restricted_violations(name: str, spec: dict[str, Any], library_mount: str = "/music") -> list[str]:
    """What the Pod Security Standard "restricted" (v1.25+) refuses in a pod spec, plus this project's own rules:
    a read-only root filesystem and the music library mounted read-only."""
    found = []
    pod = spec.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            found.append(f"{name}: {flag}")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= _ALLOWED_VOLUMES:
            found.append(f"{name}: volume {volume['name']} of type {sorted(kinds)}")
        if volume["name"] == "library" and volume.get("persistentVolumeClaim", {}).get("readOnly") is not True:
            found.append(f"{name}: library claim not read-only")
    for container in spec.get("initContainers", []) + spec["containers"]:
        where = f"{name}/{container['name']}"
        ctx = container.get("securityContext", {})
        if ctx.get("privileged"):
            found.append(f"{where}: privileged")
        if ctx.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where}: allowPrivilegeEscalation is not false")
        caps = ctx.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            found.append(f"{where}: capabilities not dropped (ALL)")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{where}: capabilities added {caps['add']}")
        if ctx.get("runAsNonRoot", pod.get("runAsNonRoot")) is not True:
            found.append(f"{where}: runAsNonRoot is not true")
        if ctx.get("runAsUser", pod.get("runAsUser")) == 0:
            found.append(f"{where}: runAsUser 0")
        seccomp = ctx.get("seccompProfile", pod.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{where}: seccompProfile {seccomp}")
        if any(port.get("hostPort") for port in container.get("ports", [])):
            found.append(f"{where}: hostPort")
        if ctx.get("readOnlyRootFilesystem") is not True:
            found.append(f"{where}: root filesystem writable")
        for mount in container.get("volumeMounts", []):
            if (mount["name"] == "library" or mount["mountPath"] == library_mount) and mount.get(
                "readOnly"
            ) is not True:
                found.append(f"{where}: library mounted writable")
    return found


def _strict(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": properties, "required": list(required)}


_METADATA = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "maxLength": 253}}}
_STRING = {"type": "string"}
_INT = {"type": "integer"}
_NAME_REF = _strict({"name": _STRING}, ("name",))
# No schema package covers these custom resources, so the fields this chart writes are checked against schemas
# kept here, written from each project's API reference: KEDA v2 (ScaledObject, TriggerAuthentication and the
# redis lists scaler), prometheus-operator (ServiceMonitor) and Gateway API v1 (HTTPRoute).
CUSTOM_RESOURCE_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("keda.sh/v1alpha1", "ScaledObject"): _strict(
        {
            "apiVersion": _STRING,
            "kind": _STRING,
            "metadata": _METADATA,
            "spec": _strict(
                {
                    "scaleTargetRef": _strict({"name": _STRING, "kind": _STRING, "apiVersion": _STRING}, ("name",)),
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": _INT,
                    "cooldownPeriod": _INT,
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": _strict(
                            {
                                "type": {"const": "redis"},
                                "metadata": _strict(
                                    {
                                        "address": {"type": "string", "pattern": r"^[^:/@]+:[0-9]+$"},
                                        "listName": _STRING,
                                        "listLength": {"type": "string", "pattern": r"^[1-9][0-9]*$"},
                                        "activationListLength": {"type": "string", "pattern": r"^[0-9]+$"},
                                        "databaseIndex": {"type": "string", "pattern": r"^[0-9]+$"},
                                        "enableTLS": {"enum": ["true", "false"]},
                                    },
                                    ("address", "listName", "listLength"),
                                ),
                                "authenticationRef": _NAME_REF,
                            },
                            ("type", "metadata"),
                        ),
                    },
                },
                ("scaleTargetRef", "triggers"),
            ),
        },
        ("apiVersion", "kind", "metadata", "spec"),
    ),
    ("keda.sh/v1alpha1", "TriggerAuthentication"): _strict(
        {
            "apiVersion": _STRING,
            "kind": _STRING,
            "metadata": _METADATA,
            "spec": _strict(
                {
                    "secretTargetRef": {
                        "type": "array",
                        "minItems": 1,
                        "items": _strict(
                            {"parameter": {"enum": ["password", "username"]}, "name": _STRING, "key": _STRING},
                            ("parameter", "name", "key"),
                        ),
                    }
                },
                ("secretTargetRef",),
            ),
        },
        ("apiVersion", "kind", "metadata", "spec"),
    ),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _strict(
        {
            "apiVersion": _STRING,
            "kind": _STRING,
            "metadata": _METADATA,
            "spec": _strict(
                {
                    "selector": _strict({"matchLabels": {"type": "object", "additionalProperties": _STRING}}),
                    "namespaceSelector": _strict({"matchNames": {"type": "array", "items": _STRING}}),
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": _strict(
                            {
                                "port": _STRING,
                                "path": _STRING,
                                "interval": {"type": "string", "pattern": r"^[0-9]+(ms|s|m|h)$"},
                            },
                            ("port",),
                        ),
                    },
                },
                ("selector", "endpoints"),
            ),
        },
        ("apiVersion", "kind", "metadata", "spec"),
    ),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): _strict(
        {
            "apiVersion": _STRING,
            "kind": _STRING,
            "metadata": _METADATA,
            "spec": _strict(
                {
                    "parentRefs": {
                        "type": "array",
                        "minItems": 1,
                        "items": _strict(
                            {
                                "name": _STRING,
                                "namespace": _STRING,
                                "sectionName": _STRING,
                                "group": _STRING,
                                "kind": _STRING,
                            },
                            ("name",),
                        ),
                    },
                    "hostnames": {"type": "array", "items": _STRING},
                    "rules": {
                        "type": "array",
                        "items": _strict(
                            {
                                "matches": {
                                    "type": "array",
                                    "items": _strict(
                                        {
                                            "path": _strict(
                                                {
                                                    "type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
                                                    "value": _STRING,
                                                }
                                            )
                                        }
                                    ),
                                },
                                "backendRefs": {
                                    "type": "array",
                                    "items": _strict({"name": _STRING, "port": _INT}, ("name", "port")),
                                },
                            }
                        ),
                    },
                },
                ("parentRefs",),
            ),
        },
        ("apiVersion", "kind", "metadata", "spec"),
    ),
}


def validate(obj: dict[str, Any], minor: str) -> None:
    """Check one object: built-in kinds with kubernetes-validate (strict: unknown fields are errors), the custom
    resources against :data:`CUSTOM_RESOURCE_SCHEMAS`. Raises on anything invalid or of an unknown kind."""
    custom = CUSTOM_RESOURCE_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
    if custom is not None:
        jsonschema.validate(obj, custom)
    else:
        kubernetes_validate.validate(obj, minor, strict=True)
