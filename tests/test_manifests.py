"""Rendered overlays: valid Kubernetes for two versions, restricted-profile pods, images by digest.

Rendering uses ``kubectl kustomize``; validation uses kubernetes-validate's bundled schemas
(offline, strict: unknown fields are errors, and a kind without a schema fails instead of
being skipped).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from .kustomize import pod_of, render, with_components

KUBERNETES_VERSIONS = ("1.33.0", "1.36.0")
ENVIRONMENTS = ("staging", "production")
EXPECTED_KINDS = [
    "Deployment",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "Service",
]
# Where production may differ from staging: identity and capacity, nothing else.
ALLOWED_DIFFERENCES = {
    "namespace",
    "instance",
    "minReplicas",
    "maxReplicas",
    "minAvailable",
}


TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_overlay_validates_strictly(baked: Path, environment: str, version: str) -> None:
    resources = render(baked, environment)
    assert sorted(resource["kind"] for resource in resources) == EXPECTED_KINDS
    for resource in resources:
        kubernetes_validate.validate(resource, version, strict=True)


def pod_problems(pod: dict[str, Any]) -> list[str]:
    """Pod Security Standards "restricted", plus a read-only root filesystem."""
    problems = []
    security = pod.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            problems.append(f"{flag} is set")
    if any("hostPath" in volume for volume in pod.get("volumes", [])):
        problems.append("hostPath volume")
    for container in pod["containers"] + pod.get("initContainers", []):
        context = {**security, **container.get("securityContext", {})}
        name = container["name"]
        if not context.get("runAsNonRoot"):
            problems.append(f"{name}: runAsNonRoot not true")
        if context.get("runAsUser", 1) == 0:
            problems.append(f"{name}: runs as root")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation not false")
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        if context.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities not dropped")
        if set(context.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities")
        if context.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: no RuntimeDefault seccomp profile")
        if not context.get("readOnlyRootFilesystem"):
            problems.append(f"{name}: root filesystem writable")
        if "@sha256:" not in container["image"]:
            problems.append(f"{name}: image {container['image']} not pinned by digest")
        if "resources" not in container:
            problems.append(f"{name}: resources missing")
    for container in pod["containers"]:  # init containers have no probes
        if not {"readinessProbe", "livenessProbe"} <= set(container):
            problems.append(f"{container['name']}: probes missing")
    return problems


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_pods_meet_the_restricted_profile(baked: Path, environment: str) -> None:
    (deployment,) = [r for r in render(baked, environment) if r["kind"] == "Deployment"]
    assert pod_problems(deployment["spec"]["template"]["spec"]) == []
    strategy = deployment["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"]
        == "/ready"
    )


def test_the_policy_check_catches_a_bad_pod() -> None:
    bad = {
        "hostNetwork": True,
        "containers": [
            {"name": "x", "image": "nginx:latest", "securityContext": {"privileged": True}}
        ],
    }
    problems = pod_problems(bad)
    assert "hostNetwork is set" in problems
    assert "x: privileged" in problems
    assert "x: image nginx:latest not pinned by digest" in problems
    assert len(problems) >= 8


def differences(left: Any, right: Any, path: tuple[str, ...] = ()) -> set[str]:
    """Names of the leaf keys whose values differ between two documents."""
    if isinstance(left, dict) and isinstance(right, dict):
        found: set[str] = set()
        for key in left.keys() | right.keys():
            found |= differences(left.get(key), right.get(key), (*path, key))
        return found
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        return set().union(*(differences(a, b, path) for a, b in zip(left, right, strict=True)))
    if left == right:
        return set()
    leaf = path[-1] if path else ""
    return {"instance" if leaf == "app.kubernetes.io/instance" else leaf}


def test_overlays_differ_only_where_environments_differ(baked: Path) -> None:
    staging = {(r["kind"], r["metadata"]["name"]): r for r in render(baked, "staging")}
    production = {(r["kind"], r["metadata"]["name"]): r for r in render(baked, "production")}
    assert staging.keys() == production.keys()
    changed = set().union(*(differences(staging[key], production[key]) for key in staging))
    assert changed <= ALLOWED_DIFFERENCES, changed - ALLOWED_DIFFERENCES
    assert changed == {"namespace", "instance", "minReplicas", "maxReplicas", "minAvailable"}


def test_probes_have_deliberate_timeouts(baked: Path) -> None:
    for environment in ENVIRONMENTS:
        (deployment,) = [r for r in render(baked, environment) if r["kind"] == "Deployment"]
        (server,) = deployment["spec"]["template"]["spec"]["containers"]
        for probe in ("readinessProbe", "livenessProbe"):
            assert server[probe]["timeoutSeconds"] == 2, probe


def test_the_autoscaler_alone_sets_the_replica_count(baked: Path) -> None:
    """A Deployment's spec.replicas next to an HPA makes Argo CD's self-heal undo scaling."""
    for environment in ENVIRONMENTS:
        resources = {r["kind"]: r for r in render(baked, environment)}
        assert "replicas" not in resources["Deployment"]["spec"]
        assert (
            resources["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"]
            == (resources["Deployment"]["metadata"]["name"])
        )


def test_argo_cd_applications_sync_their_overlays(baked: Path) -> None:
    answers = yaml.safe_load((baked / ".cruft.json").read_text())["context"]["cookiecutter"]
    for environment in ENVIRONMENTS:
        application = yaml.safe_load(
            (baked / "deploy" / "argocd" / f"{environment}.yaml").read_text()
        )
        source = application["spec"]["source"]
        assert source["repoURL"] == (
            f"https://github.com/{answers['github_owner']}/{answers['project']}.git"
        )
        assert (baked / source["path"] / "kustomization.yaml").is_file()
        assert application["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
        namespace = application["spec"]["destination"]["namespace"]
        assert namespace == render(baked, environment)[0]["metadata"]["namespace"]


def triton_pod(project: Path, root: Path, *components: str) -> dict[str, Any]:
    """The pod with ``components``, after every rendered resource validated strictly."""
    rendered = with_components(project, root, *components)
    for resource in rendered:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(resource, version, strict=True)
    return pod_of(rendered)


def test_the_triton_component_serves_the_overlays_model_with_triton(
    baked_default: Path, tmp_path: Path
) -> None:
    pod = triton_pod(baked_default, tmp_path, "triton")
    # Locked down like the project's server; only Triton's image is a tag, for its user to pin.
    assert pod_problems(pod) == [f"server: image {TRITON_IMAGE} not pinned by digest"]
    (copier,), (server,) = pod["initContainers"], pod["containers"]
    (own,) = [c for c in render(baked_default, "production") if c["kind"] == "Deployment"]
    assert copier["image"] == own["spec"]["template"]["spec"]["containers"][0]["image"]
    assert copier["env"] == [{"name": "TRITON_INSTANCE_KIND", "value": "KIND_CPU"}]
    assert server["image"] == TRITON_IMAGE
    assert server["command"] == ["tritonserver"]
    assert server["args"] == [
        "--model-repository=/models", "--model-control-mode=none", "--strict-readiness=true",
        "--exit-on-error=true", "--http-port=8080", "--grpc-port=8001", "--metrics-port=8002",
    ]  # fmt: skip
    assert server["env"] == []  # the project server's settings are gone
    assert server["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert server["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert server["readinessProbe"]["timeoutSeconds"] == 2  # the base's, kept
    assert server["ports"] == [{"name": "http", "containerPort": 8080}]
    mounts = {m["name"]: m["mountPath"] for m in copier["volumeMounts"] + server["volumeMounts"]}
    assert mounts == {"model-repository": "/models", "tmp": "/tmp"}  # noqa: S108 - in the pod
    assert "nodeSelector" not in pod
    assert "nvidia.com/gpu" not in server["resources"]["limits"]


def test_the_gpu_component_asks_for_a_gpu_node_and_moves_the_instances(
    baked_default: Path, tmp_path: Path
) -> None:
    pod = triton_pod(baked_default, tmp_path, "triton", "triton-gpu")
    (copier,), (server,) = pod["initContainers"], pod["containers"]
    assert copier["env"] == [{"name": "TRITON_INSTANCE_KIND", "value": "KIND_GPU"}]
    assert server["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert server["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


# Fields KubeRay's RayCluster CRD (ray.io/v1) requires of every worker group.
WORKER_GROUP_FIELDS = {"groupName", "maxReplicas", "minReplicas", "rayStartParams", "template"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_ray_cluster_is_what_kuberay_requires_with_restricted_pods(
    baked_tabular: Path, version: str
) -> None:
    """The cluster of the tune stage: an agent's project has neither."""
    cluster = yaml.safe_load((baked_tabular / "deploy" / "ray" / "raycluster.yaml").read_text())
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    spec = cluster["spec"]
    # Ray Client refuses a cluster of another Ray: the one requirements/tune.txt installs.
    pinned = (baked_tabular / "requirements" / "tune.txt").read_text()
    assert f"ray[tune]=={spec['rayVersion']}\n" in pinned
    head = spec["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict)
    workers = spec["workerGroupSpecs"]
    assert [WORKER_GROUP_FIELDS - set(group) for group in workers] == [set()]
    for group in workers:
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    python = answers_of(baked_tabular)["python_version"].replace(".", "")
    pods = [head["template"]["spec"]] + [group["template"]["spec"] for group in workers]
    for pod in pods:
        template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "ray"}}
        kubernetes_validate.validate({**template, "template": {"spec": pod}}, version, strict=True)
        for container in pod["containers"]:
            assert container["image"] == f"rayproject/ray:{spec['rayVersion']}-py{python}-cpu"
            assert container["env"] == [
                {"name": "RAY_AUTH_MODE", "value": "token"},
                {
                    "name": "RAY_AUTH_TOKEN",
                    "valueFrom": {"secretKeyRef": {"name": "ray-auth", "key": "token"}},
                },
            ]
        # Restricted, apart from what KubeRay owns: Ray's published tags, and the probes the
        # operator adds to every Ray container.
        containers = pod["containers"]
        owned = [f"{c['name']}: image {c['image']} not pinned by digest" for c in containers]
        owned += [f"{c['name']}: probes missing" for c in containers]
        assert pod_problems(pod) == owned
    client = {port["name"]: port["containerPort"] for port in pods[0]["containers"][0]["ports"]}
    assert client["client"] == 10001


def answers_of(project: Path) -> dict[str, str]:
    return json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]
