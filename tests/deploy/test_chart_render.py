"""Every chart-testing value set (ci/<case>-values.yaml) renders, under a short and a 55-character release name,
into manifests valid for the last three Kubernetes minors kubernetes-validate knows, that a cluster enforcing Pod
Security "restricted" admits, and whose first install cannot hang on a hook."""

from __future__ import annotations

import re

import pytest

from tests.deploy.manifests import (
    CASES,
    KUBERNETES_MINORS,
    RELEASES,
    hook_dependency_problems,
    objects,
    render_case,
    restricted_violations,
    validate,
    workloads,
)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
PER_CASE = [pytest.param(case, release, id=f"{case}-{len(release)}") for case in CASES for release in RELEASES]


def test_every_case_of_the_issue_has_a_values_file() -> None:
    assert {"navidrome", "jellyfin", "external", "gpu-stems", "keda", "ingress"} <= set(CASES)


@pytest.mark.parametrize(("case", "release"), PER_CASE)
def test_manifests_are_valid_for_the_last_three_kubernetes_minors(case: str, release: str) -> None:
    objs = objects(render_case(case, release))
    assert len(KUBERNETES_MINORS) == 3
    for minor in KUBERNETES_MINORS:
        for obj in objs:
            validate(obj, minor)


@pytest.mark.parametrize(("case", "release"), PER_CASE)
def test_names_fit_kubernetes_limits(case: str, release: str) -> None:
    for obj in objects(render_case(case, release)):
        name = obj["metadata"]["name"]
        assert len(name) <= 63, name
        assert DNS_LABEL.match(name), name
        for key, value in obj["metadata"].get("labels", {}).items():
            assert len(str(value)) <= 63, (name, key)


@pytest.mark.parametrize(("case", "release"), PER_CASE)
def test_no_pre_install_hook_needs_an_object_the_install_creates_later(case: str, release: str) -> None:
    assert hook_dependency_problems(objects(render_case(case, release))) == []


@pytest.mark.parametrize(("case", "release"), PER_CASE)
def test_pods_pass_pod_security_restricted(case: str, release: str) -> None:
    pods = workloads(objects(render_case(case, release)))
    assert pods
    for name, spec in pods.items():
        assert restricted_violations(name, spec) == []


def test_long_release_names_are_shortened_not_cut_into_collisions() -> None:
    long_names = [o["metadata"]["name"] for o in objects(render_case("keda", RELEASES[1])) if o["kind"] != "Secret"]
    by_kind = [(o["kind"], o["metadata"]["name"]) for o in objects(render_case("keda", RELEASES[1]))]
    assert len(set(by_kind)) == len(by_kind)
    assert max(len(n) for n in long_names) == 63  # "<52-character base>-no-ingress"
