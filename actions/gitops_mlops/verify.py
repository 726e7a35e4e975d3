"""Verify a rollout against the cluster: the Deployment's new pods available with the image,
then, given a model name, the Service answering the Open Inference Protocol for that model.

``classify`` judges one look at the cluster (the API's JSON for the Deployment and its pods);
``classify_service`` judges one round of v2 requests to the Service, sent through the
Kubernetes API's service proxy (so no ingress is needed), which this project's server and
Triton answer alike. ``poll`` repeats a look until it is complete, has failed, or the
deadline passes. A look that fails (an API error, a hang, no answer) counts as "still
progressing", so verification retries until the deadline and never ends in a traceback; at
the deadline the rollout has failed and is reverted. Only the readers need the Kubernetes
Python client, which the action installs (in its own environment) when verification is on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Resource = dict[str, Any]

# Container states that no amount of waiting fixes: the new pods will not come up.
FATAL_WAITING = {
    "CrashLoopBackOff": "crash-looping",
    "ImagePullBackOff": "cannot pull its image",
    "ErrImagePull": "cannot pull its image",
    "InvalidImageName": "has an invalid image name",
    "CreateContainerConfigError": "has an invalid container configuration",
}


@dataclass(frozen=True)
class Snapshot:
    """One look at the cluster: the Deployment (None: not there yet) and its pods."""

    deployment: Resource | None
    pods: Sequence[Resource] = field(default_factory=tuple)
    error: str | None = None  # the look itself failed (API error, timeout)


@dataclass(frozen=True)
class Observation:
    """What one look at the cluster says about the rollout."""

    state: Literal["complete", "progressing", "failed"]
    reason: str


def classify(snapshot: Snapshot, image: str) -> Observation:
    """Judge one look at the cluster for a rollout of ``image``."""
    if snapshot.error is not None:
        return Observation("progressing", f"the Kubernetes API did not answer: {snapshot.error}")
    deployment = snapshot.deployment
    if deployment is None:
        return Observation(
            "progressing", "the Deployment does not exist yet (Argo CD has not synced)"
        )
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    images = [
        c.get("image") for c in spec.get("template", {}).get("spec", {}).get("containers", [])
    ]
    if image not in images:
        return Observation(
            "progressing",
            f"the Deployment still runs {images}; waiting for Argo CD to apply {image}",
        )
    # Conditions describe the generation the controller last saw: until it has seen this
    # one, an old ProgressDeadlineExceeded or ReplicaFailure says nothing about this rollout.
    generation = deployment.get("metadata", {}).get("generation", 0)
    if status.get("observedGeneration", 0) < generation:
        return Observation(
            "progressing", f"generation {generation} not yet observed by the controller"
        )
    if spec.get("paused"):
        return Observation("failed", "the Deployment's rollout is paused")
    conditions = {c.get("type"): c for c in status.get("conditions", [])}
    progressing = conditions.get("Progressing", {})
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return Observation(
            "failed", f"progress deadline exceeded: {progressing.get('message', '')}".strip()
        )
    failure = conditions.get("ReplicaFailure", {})
    if failure.get("status") == "True":
        return Observation(
            "failed", f"replica failure: {failure.get('message', failure.get('reason', ''))}"
        )
    if stuck := fatal_pod(snapshot.pods, image):
        return Observation("failed", stuck)
    desired = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    total = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < desired:
        return Observation("progressing", f"{updated}/{desired} replicas updated")
    if total > updated:
        return Observation("progressing", f"{total - updated} old replicas still terminating")
    if available < updated:
        return Observation("progressing", f"{available}/{updated} updated replicas available")
    return Observation(
        "complete", f"{updated}/{desired} replicas updated and available with {image}"
    )


def fatal_pod(pods: Sequence[Resource], image: str) -> str | None:
    """Why a pod of the new image will never become ready, seen from its container states."""
    for pod in pods:
        containers = pod.get("spec", {}).get("containers", [])
        if image not in [container.get("image") for container in containers]:
            continue  # an old pod
        for container in pod.get("status", {}).get("containerStatuses", []) or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if (reason := waiting.get("reason")) in FATAL_WAITING:
                name = pod.get("metadata", {}).get("name", "?")
                detail = f": {waiting['message']}" if waiting.get("message") else ""
                return f"pod {name} {FATAL_WAITING[reason]} ({reason}{detail})"
    return None


def wait(
    read: Callable[[float], Snapshot],
    image: str,
    deadline_seconds: float,
    interval_seconds: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Observation:
    """Poll the Deployment until the rollout of ``image`` completes or fails."""
    return poll(
        lambda left: classify(read(left), image), deadline_seconds, interval_seconds, clock, sleep
    )


@dataclass(frozen=True)
class ServiceAnswers:
    """One round of Open Inference Protocol requests to the Service: status codes, metadata."""

    server_ready: int = 0
    model_ready: int = 0
    metadata: Resource | None = None
    error: str | None = None  # the round itself failed (API error, timeout)


def classify_service(answers: ServiceAnswers, name: str, model_sha256: str) -> Observation:
    """Judge one round of v2 requests for model ``name``, expected to be ``model_sha256``.

    A server that reports its model's hash (this project's does, in the metadata's
    ``parameters``) must report the one rolled out; one that does not (Triton) is judged by
    its readiness alone.
    """
    if answers.error is not None:
        return Observation("progressing", f"the Service did not answer: {answers.error}")
    if answers.server_ready != 200:
        return Observation("progressing", f"/v2/health/ready answered {answers.server_ready}")
    if answers.model_ready != 200:
        return Observation("progressing", f"/v2/models/{name}/ready answered {answers.model_ready}")
    served = ((answers.metadata or {}).get("parameters") or {}).get("model_sha256")
    if served and model_sha256 and served != model_sha256:
        return Observation(
            "progressing", f"the Service serves model {served[:12]}, not {model_sha256[:12]}"
        )
    which = f"model {served[:12]}" if served else "a server that reports no model hash"
    return Observation("complete", f"the Service answers v2 requests for {name!r} ({which})")


def poll(
    look: Callable[[float], Observation],
    deadline_seconds: float,
    interval_seconds: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Observation:
    """Look until complete or failed; still progressing at the deadline is a failure.

    ``look`` gets the seconds left, so no single look at the cluster outlives the deadline.
    """
    started = clock()
    while True:
        left = deadline_seconds - (clock() - started)
        observation = look(max(left, 0.1))
        if observation.state != "progressing":
            return observation
        if clock() - started >= deadline_seconds:
            return Observation(
                "failed", f"not complete after {deadline_seconds:g} s: {observation.reason}"
            )
        sleep(min(interval_seconds, max(deadline_seconds - (clock() - started), 0)))


REQUEST_SECONDS = 10.0  # the longest one API call may take; a silent server counts as an error


def _api_client(kubeconfig: Path) -> Any:
    """A Kubernetes API client configured by ``kubeconfig``."""
    from kubernetes import client, config  # installed by the action only when verifying

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    # No retries inside the client: urllib3's would multiply every timeout past the deadline;
    # ``poll`` retries, within it.
    configuration.retries = False
    # The service proxy's path is one parameter holding slashes: keep them as slashes.
    configuration.safe_chars_for_path_param = "/"
    return client.ApiClient(configuration)


def kubernetes_reader(kubeconfig: Path, namespace: str, name: str) -> Callable[[float], Snapshot]:
    """Look at the Deployment and its pods through the Kubernetes API with ``kubeconfig``."""
    from kubernetes import client
    from urllib3.exceptions import HTTPError

    serializer = _api_client(kubeconfig)
    apps, core = client.AppsV1Api(serializer), client.CoreV1Api(serializer)

    def read(seconds_left: float) -> Snapshot:
        timeout = min(REQUEST_SECONDS, seconds_left)
        try:
            deployment = serializer.sanitize_for_serialization(
                apps.read_namespaced_deployment(name, namespace, _request_timeout=timeout)
            )
            selector = deployment["spec"].get("selector", {}).get("matchLabels", {})
            pods = core.list_namespaced_pod(
                namespace,
                label_selector=",".join(f"{key}={value}" for key, value in selector.items()),
                _request_timeout=timeout,
            )
            return Snapshot(deployment, serializer.sanitize_for_serialization(pods)["items"])
        except client.ApiException as error:
            if error.status == 404:
                return Snapshot(None)
            return Snapshot(None, error=f"HTTP {error.status} {error.reason}")
        except (HTTPError, OSError) as error:  # timeouts, refused or reset connections
            return Snapshot(None, error=f"{type(error).__name__}: {error}")

    return read


def service_reader(
    kubeconfig: Path, namespace: str, service: str, name: str
) -> Callable[[float], ServiceAnswers]:
    """Ask the Service's ``http`` port, through the API server's proxy, for the v2 probes and
    the metadata of model ``name``."""

    from kubernetes import client
    from urllib3.exceptions import HTTPError

    core = client.CoreV1Api(_api_client(kubeconfig))

    def get(path: str, timeout: float) -> tuple[int, bytes]:
        try:
            answer = core.connect_get_namespaced_service_proxy_with_path(
                f"{service}:http", namespace, path, _request_timeout=timeout,
                _preload_content=False,
            )  # fmt: skip
            return answer.status, answer.data
        except client.ApiException as error:
            return error.status, b""

    def read(seconds_left: float) -> ServiceAnswers:
        timeout = min(REQUEST_SECONDS, seconds_left)
        try:
            server = get("v2/health/ready", timeout)[0]
            model = get(f"v2/models/{name}/ready", timeout)[0]
            status, body = get(f"v2/models/{name}", timeout)
            metadata = json.loads(body) if status == 200 else None
        except (HTTPError, OSError, ValueError) as error:  # timeouts, resets, a garbled answer
            return ServiceAnswers(error=f"{type(error).__name__}: {error}")
        return ServiceAnswers(server, model, metadata)

    return read
