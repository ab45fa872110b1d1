"""What the rendered chart does for an operator: lint, refusals with the fix in the message, secrets, Redis,
queue-depth autoscaling, the GPU stems pool, probes, and the notes printed after `helm install`."""

from __future__ import annotations

import base64
import copy
import re
from typing import Any

import helm_python as helm
import pytest

from sidecar.domain import Priority
from sidecar.jobqueue import Keys
from sidecar.jobqueue.stems import StemsKeys
from sidecar.settings import environment_variable_names
from tests.deploy.manifests import (
    CASES,
    CHART,
    by_kind,
    case_values,
    component,
    hook_dependency_problems,
    notes,
    objects,
    pod_spec,
    render,
    render_case,
    restricted_violations,
    workloads,
)

helm.disable_logging()

REQUIRED: dict[str, Any] = case_values("navidrome")


def with_values(**overrides: Any) -> dict[str, Any]:
    """The navidrome case with top-level keys merged one level deep."""
    values = copy.deepcopy(REQUIRED)
    for key, value in overrides.items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    return values


def env_of(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in spec["containers"][0].get("env", [])}


def secret_ref(env: dict[str, Any]) -> tuple[str, str]:
    ref = env["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


@pytest.mark.parametrize("case", CASES)
def test_strict_lint_with_each_case_reports_nothing(case: str) -> None:
    result = helm.lint(str(CHART), case_values(case), strict=True, namespace="media")
    assert result["errors"] == []
    assert result["messages"] == []


def test_strict_lint_checks_the_values_it_is_given() -> None:
    # Without values a lint cannot know what an install would be refused for (Helm logs `required` and `fail`
    # in lint mode instead of failing), so each case above is linted with its values; a bad one is an error.
    assert helm.lint(str(CHART), None, strict=True)["errors"] == []
    result = helm.lint(str(CHART), with_values(persistence={"size": "10 GB"}), strict=True)
    assert any("/persistence/size" in m["error"] and m["severity"] == 3 for m in result["messages"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"host": REQUIRED["host"]}, "library.existingClaim is required"),
        ({"library": {"existingClaim": "m"}, "host": {"kind": "jellyfin", "url": "http://j"}}, "existingSecret"),
        (with_values(host={"username": ""}), "host.username is required"),
        (with_values(postgresql={"enabled": True}), "the chart bundles no PostgreSQL"),
        (with_values(redis={"bundled": False}), "choose exactly one Redis"),
        (with_values(redis={"urlFromSecret": True}), "choose exactly one Redis"),
        (with_values(host={"existingSecret": "sonantica-auth"}), "the chart creates that Secret itself"),
        (
            with_values(ingress={"enabled": True}, httpRoute={"enabled": True, "parentRefs": [{"name": "g"}]}),
            "not both",
        ),
        (with_values(httpRoute={"enabled": True}), "httpRoute.parentRefs is required"),
        (
            with_values(redis={"bundled": False, "urlFromSecret": True}, autoscaling={"keda": {"enabled": True}}),
            "autoscaling.keda.redisAddress is required",
        ),
    ],
)
def test_checks_stop_an_install_with_the_fix_in_the_message(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError, match=message):
        render(values)


@pytest.mark.parametrize(
    "override",
    [
        {"host": {"kind": "plex"}},
        {"api": {"port": 0}},
        {"api": {"service": {"typo": "NodePort"}}},
        {"persistence": {"size": "10 GB"}},
        {"persistence": {"accessMode": "ReadWriteSometimes"}},
        {"redis": {"url": "redis://:hunter2@redis:6379/0"}},
        {"worker": {"queues": "on_play"}},
        {"unknownKey": 1},
    ],
)
def test_schema_rejects_bad_values(override: dict[str, Any]) -> None:
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmError):
        chart.validate_schema(chart.merge_values(with_values(**override)))


@pytest.mark.parametrize("size", ["1.5Gi", "500G", "10Gi", "750Mi", "2Ti"])
def test_schema_takes_kubernetes_quantities(size: str) -> None:
    claim = by_kind(objects(render(with_values(persistence={"size": size}))), "PersistentVolumeClaim")
    assert next(iter(claim.values()))["spec"]["resources"]["requests"]["storage"] == size


def test_data_volume_defaults_to_read_write_once_and_follows_the_values() -> None:
    claims = by_kind(objects(render_case("navidrome")), "PersistentVolumeClaim")
    assert [c["spec"]["accessModes"] for c in claims.values()] == [["ReadWriteOnce"]]
    assert next(iter(claims.values()))["spec"]["storageClassName"] == "local-path"
    shared = by_kind(objects(render_case("gpu-stems")), "PersistentVolumeClaim")
    assert [c["spec"]["accessModes"] for c in shared.values()] == [["ReadWriteMany"]]
    existing = objects(render(with_values(persistence={"existingClaim": "cache"})))
    assert by_kind(existing, "PersistentVolumeClaim") == {}
    for name, spec in workloads(existing).items():
        data = [v for v in spec.get("volumes", []) if v["name"] == "data"]
        if name in ("sonantica-api", "sonantica-worker", "sonantica-scheduler"):
            assert data == [{"name": "data", "persistentVolumeClaim": {"claimName": "cache"}}], name
    ephemeral = workloads(objects(render_case("external")))
    assert all(
        {"name": "data", "emptyDir": {}} in s["volumes"]
        for n, s in ephemeral.items()
        if n.endswith(("-api", "-worker"))
    )


def test_every_api_replica_reads_one_generated_token_from_a_secret() -> None:
    objs = objects(render_case("ingress"))
    secret = by_kind(objs, "Secret")["sonantica-auth"]
    token = base64.b64decode(secret["data"]["api-token"]).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{48}", token)
    api = by_kind(objs, "Deployment")["sonantica-api"]
    assert api["spec"]["replicas"] == 2
    assert secret_ref(env_of(pod_spec(api))["SONANTICA_API__TOKEN"]) == ("sonantica-auth", "api-token")
    # Rendered again (as on `helm upgrade` without cluster access) a new token is drawn; on a real upgrade the
    # chart's lookup of the existing Secret keeps the first one.
    again = by_kind(objects(render(case_values("ingress"))), "Secret")["sonantica-auth"]
    assert again["data"]["api-token"] != secret["data"]["api-token"]


def test_an_existing_token_secret_replaces_the_generated_one() -> None:
    objs = objects(render_case("external"))
    assert by_kind(objs, "Secret") == {}  # no bundled Redis and no generated token: nothing for the chart to keep
    for spec in workloads(objs).values():
        env = env_of(spec)
        if "SONANTICA_API__TOKEN" in env:
            assert secret_ref(env["SONANTICA_API__TOKEN"]) == ("sonantica-api-token", "api-token")


def test_no_credentials_in_the_configmap() -> None:
    for case in CASES:
        config = next(iter(by_kind(objects(render_case(case)), "ConfigMap").values()))["data"]
        for name, value in config.items():
            assert not re.search(r"://[^/]*:[^/]*@", value), (case, name)
            assert not re.search(r"PASSWORD|TOKEN|SECRET|API_KEY|DATABASE_URL", name), (case, name)


def test_bundled_redis_is_reached_with_its_generated_password() -> None:
    objs = objects(render_case("navidrome"))
    redis = by_kind(objs, "Deployment")["sonantica-redis"]
    assert "--requirepass" in pod_spec(redis)["containers"][0]["args"]
    assert "sonantica-redis" in by_kind(objs, "Service")
    worker = env_of(pod_spec(by_kind(objs, "Deployment")["sonantica-worker"]))
    assert secret_ref(worker["REDIS_PASSWORD"]) == ("sonantica-auth", "redis-password")
    names = list(worker)
    assert names.index("REDIS_PASSWORD") < names.index("SONANTICA_REDIS_URL")  # $(REDIS_PASSWORD) expands
    assert worker["SONANTICA_REDIS_URL"]["value"] == "redis://:$(REDIS_PASSWORD)@sonantica-redis:6379/0"


def test_external_redis_by_url_or_from_the_secret() -> None:
    keda = objects(render_case("keda"))
    assert "sonantica-redis" not in by_kind(keda, "Deployment")
    config = next(iter(by_kind(keda, "ConfigMap").values()))["data"]
    assert config["SONANTICA_REDIS_URL"] == "rediss://redis.data.svc:6380/2"
    external = objects(render_case("external"))
    worker = env_of(pod_spec(by_kind(external, "Deployment")["sonantica-sidecar-worker"]))
    assert secret_ref(worker["SONANTICA_REDIS_URL"]) == ("sonantica-external", "redis-url")


def test_keda_scales_each_pool_on_the_redis_lists_of_its_queues() -> None:
    objs = objects(render_case("keda"))
    scaled = by_kind(objs, "ScaledObject")
    assert set(scaled) == {"sonantica-worker", "sonantica-stems"}
    lists = {name: [t["metadata"]["listName"] for t in s["spec"]["triggers"]] for name, s in scaled.items()}
    keys = Keys("sonantica:")  # the names the workers really use
    assert lists == {
        "sonantica-worker": [keys.queue(Priority.ON_PLAY), keys.queue(Priority.SCAN)],
        "sonantica-stems": [StemsKeys.of(keys).queue],
    }
    assert lists["sonantica-worker"] == ["sonantica:queue:on_play", "sonantica:queue:scan"]
    worker = scaled["sonantica-worker"]["spec"]
    assert (worker["minReplicaCount"], worker["maxReplicaCount"]) == (0, 8)
    assert scaled["sonantica-stems"]["spec"]["minReplicaCount"] == 0
    trigger = worker["triggers"][0]["metadata"]
    assert (trigger["address"], trigger["databaseIndex"], trigger["enableTLS"], trigger["listLength"]) == (
        "redis.data.svc:6380",
        "2",
        "true",
        "5",
    )
    for name in scaled:  # KEDA owns the replica count: the Deployment must not reset it on every upgrade
        assert scaled[name]["spec"]["scaleTargetRef"]["name"] in by_kind(objs, "Deployment")
        assert "replicas" not in by_kind(objs, "Deployment")[name]["spec"]


def test_keda_with_the_bundled_redis_authenticates_with_its_password() -> None:
    objs = objects(render(with_values(autoscaling={"keda": {"enabled": True}})))
    auth = by_kind(objs, "TriggerAuthentication")["sonantica-keda-auth"]
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "password", "name": "sonantica-auth", "key": "redis-password"}
    ]
    (scaled,) = by_kind(objs, "ScaledObject").values()  # no GPU pool: the CPU workers also take stems
    keys = Keys("sonantica:")  # the names the workers really use
    assert [t["metadata"]["listName"] for t in scaled["spec"]["triggers"]] == [
        keys.queue(Priority.ON_PLAY),
        keys.queue(Priority.SCAN),
        StemsKeys.of(keys).queue,
    ]
    assert {t["metadata"]["address"] for t in scaled["spec"]["triggers"]} == {"sonantica-redis.media.svc:6379"}
    assert all(t["authenticationRef"] == {"name": "sonantica-keda-auth"} for t in scaled["spec"]["triggers"])


def test_gpu_pool_takes_only_the_stems_queue_on_gpu_nodes() -> None:
    deployments = by_kind(objects(render_case("gpu-stems")), "Deployment")
    stems = pod_spec(deployments["sonantica-stems"])
    container = stems["containers"][0]
    assert container["args"][:3] == ["worker", "--queues", "stems"]
    assert container["image"] == "ghcr.io/sonantica/sidecar:0.1.0-cuda"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["resources"]["limits"]["memory"] == "8Gi"
    assert stems["runtimeClassName"] == "nvidia"
    assert stems["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert stems["priorityClassName"] == "batch-low"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in stems["tolerations"]
    cpu = pod_spec(deployments["sonantica-worker"])["containers"][0]
    assert cpu["args"][-2:] == ["--queues", "on-play,scan"]
    assert "nvidia.com/gpu" not in cpu["resources"].get("limits", {})
    without_pool = by_kind(objects(render_case("navidrome")), "Deployment")
    assert "--queues" not in pod_spec(without_pool["sonantica-worker"])["containers"][0]["args"]
    assert "sonantica-stems" not in without_pool


def test_every_workload_has_requests_limits_and_real_probes() -> None:
    objs = objects(render_case("gpu-stems"))
    probes = {}
    for name, spec in workloads(objs).items():
        container = spec["containers"][0]
        assert container["resources"]["requests"], name
        assert container["resources"]["limits"]["memory"], name
        probes[name] = container.get("livenessProbe")
    assert probes["sonantica-api"]["httpGet"]["path"] == "/health/live"
    for name in ("sonantica-worker", "sonantica-stems"):
        assert probes[name]["exec"]["command"] == ["python", "-m", "sidecar.probe", "worker"]
    assert probes["sonantica-scheduler"]["exec"]["command"] == ["python", "-m", "sidecar.probe", "scheduler"]
    api = pod_spec(by_kind(objs, "Deployment")["sonantica-api"])["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert api["startupProbe"]["failureThreshold"] >= 60


def test_probes_are_configurable() -> None:
    values = with_values(
        worker={"probes": {"liveness": None, "startup": None}},
        api={"probes": {"liveness": {"httpGet": None, "tcpSocket": {"port": "http"}}}},
    )
    deployments = by_kind(objects(render(values)), "Deployment")
    assert "livenessProbe" not in pod_spec(deployments["sonantica-worker"])["containers"][0]
    liveness = pod_spec(deployments["sonantica-api"])["containers"][0]["livenessProbe"]
    assert (liveness["tcpSocket"], "httpGet" in liveness) == ({"port": "http"}, False)


def test_migrate_job_is_a_hook_with_inline_settings() -> None:
    objs = objects(render_case("navidrome"))
    job = by_kind(objs, "Job")["sonantica-migrate"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    spec = pod_spec(job)
    assert spec["containers"][0]["args"] == ["migrate"]
    assert "envFrom" not in spec["containers"][0]
    assert secret_ref(env_of(spec)["SONANTICA_DATABASE_URL"]) == ("sonantica", "database-url")
    assert spec["serviceAccountName"] == "default"  # the chart's ServiceAccount does not exist yet
    assert [v["name"] for v in spec["volumes"]] == ["tmp"]
    existing_account = workloads(objects(render_case("httproute")))["sonantica-migrate"]
    assert existing_account["serviceAccountName"] == "media-apps"


def test_hook_check_finds_a_hook_that_needs_the_release_configmap() -> None:
    objs = objects(render_case("navidrome"))
    job = by_kind(objs, "Job")["sonantica-migrate"]
    pod_spec(job)["containers"][0]["envFrom"] = [{"configMapRef": {"name": "sonantica"}}]
    pod_spec(job)["volumes"].append({"name": "data", "persistentVolumeClaim": {"claimName": "sonantica-data"}})
    assert hook_dependency_problems(objs) == [
        "sonantica-migrate needs ConfigMap sonantica",
        "sonantica-migrate needs PersistentVolumeClaim sonantica-data",
    ]


def test_restricted_check_finds_what_the_policy_refuses() -> None:
    values = with_values(
        podSecurityContext={"seccompProfile": None},
        securityContext={"allowPrivilegeEscalation": True, "readOnlyRootFilesystem": False},
    )
    spec = workloads(objects(render(values)))["sonantica-api"]
    spec["volumes"][0]["persistentVolumeClaim"]["readOnly"] = False
    assert restricted_violations("api", spec) == [
        "api: library claim not read-only",
        "api/api: allowPrivilegeEscalation is not false",
        "api/api: seccompProfile None",
        "api/api: root filesystem writable",
    ]


def test_pods_mount_the_library_read_only_with_the_sub_path() -> None:
    for name, spec in workloads(objects(render_case("jellyfin"))).items():
        library = [m for m in spec["containers"][0].get("volumeMounts", []) if m["name"] == "library"]
        if "migrate" in name or "test" in name or "redis" in name:
            assert library == [], name
            continue
        assert library == [{"name": "library", "mountPath": "/music", "readOnly": True, "subPath": "music"}], name


def test_operator_features_of_a_well_kept_chart() -> None:
    objs = objects(render_case("ingress"))
    pods = workloads(objs)
    for name, spec in pods.items():
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["imagePullSecrets"] == [{"name": "ghcr-pull"}], name
    api = by_kind(objs, "Deployment")["sonantica-api"]
    assert api["spec"]["template"]["metadata"]["labels"]["team"] == "media"
    assert api["spec"]["template"]["metadata"]["annotations"]["backup.velero.io/backup-volumes-excludes"] == "tmp"
    container = pod_spec(api)["containers"][0]
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in container["volumeMounts"]
    assert env_of(pod_spec(api))["SONANTICA_LOG_LEVEL"] == {"name": "SONANTICA_LOG_LEVEL", "value": "DEBUG"}
    ingress = by_kind(objs, "Ingress")["sonantica-api"]
    assert ingress["spec"]["ingressClassName"] == "traefik"
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"] == {
        "name": "sonantica-api",
        "port": {"name": "http"},
    }
    service = by_kind(objs, "Service")["sonantica-api"]
    assert (service["spec"]["type"], service["spec"]["ports"][0]["nodePort"]) == ("NodePort", 30787)
    assert set(by_kind(objs, "PodDisruptionBudget")) == {"sonantica-api", "sonantica-worker"}
    account = by_kind(objs, "ServiceAccount")["sonantica"]
    assert account["automountServiceAccountToken"] is False
    route = by_kind(objects(render_case("httproute")), "HTTPRoute")["sonantica-api"]
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "sonantica-api", "port": 8787}]
    keda = objects(render_case("keda"))
    monitor = by_kind(keda, "ServiceMonitor")["sonantica-api"]
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spread = pod_spec(by_kind(keda, "Deployment")["sonantica-worker"])["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in spread] == ["kubernetes.io/hostname"]
    policies = by_kind(keda, "NetworkPolicy")
    assert set(policies) == {"sonantica-api", "sonantica-no-ingress"}
    assert policies["sonantica-no-ingress"]["spec"]["ingress"] == []


def test_nameoverride_and_chart_metadata() -> None:
    names = {o["metadata"]["name"] for o in objects(render_case("external"))}
    assert "sonantica-sidecar-api" in names
    with helm.Chart.load(str(CHART)) as chart:
        metadata = chart.metadata
    assert metadata["home"]
    assert metadata["sources"]
    assert metadata["icon"].startswith("https://")


def test_helm_test_calls_health_ready() -> None:
    pod = by_kind(objects(render_case("navidrome")), "Pod")["sonantica-test"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["containers"][0]["command"][-1] == "http://sonantica-api:8787/health/ready"


def test_notes_give_the_webhook_sign_in_and_token_commands() -> None:
    jellyfin = notes(render_case("jellyfin"))
    assert "http://sonantica-api.media.svc:8787/hooks/jellyfin" in jellyfin
    assert "Web client:   http://sonantica-api.media.svc:8787/" in jellyfin
    assert "get secret sonantica-auth -o jsonpath='{.data.api-token}'" in jellyfin
    ingress = notes(render_case("ingress"))
    assert "API:          https://sonantica.home.arpa" in ingress
    assert "hooks/jellyfin" not in notes(render_case("navidrome"))
    rwo_gpu = notes(render(with_values(stems={"enabled": True})))
    assert "ReadWriteOnce volume" in rwo_gpu


def test_environment_names_are_settings_the_code_reads() -> None:
    names: set[str] = set()
    for case in CASES:
        objs = objects(render_case(case))
        for config in by_kind(objs, "ConfigMap").values():
            names |= {n for n in config["data"] if n.startswith("SONANTICA_")}
        for spec in workloads(objs).values():
            names |= {n for n in env_of(spec) if n.startswith("SONANTICA_")}
    assert "SONANTICA_API__TOKEN" in names
    assert not names - environment_variable_names()


def test_workloads_are_labelled_by_component() -> None:
    objs = objects(render_case("keda"))
    assert {component(o) for o in objs if o["kind"] == "Deployment"} == {"api", "worker", "stems", "scheduler"}
