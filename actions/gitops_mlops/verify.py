"""Verify a rollout against the cluster: the Deployment's new pods available with the image.

``classify`` judges one look at the cluster (the API's JSON for the Deployment and its pods);
``wait`` polls until the rollout is complete, has failed, or the deadline passes. A look that
fails (an API error, a hang, no answer) counts as "still progressing", so verification
retries until the deadline and never ends in a traceback; at the deadline the rollout has
failed and is reverted. Only ``kubernetes_reader`` needs the Kubernetes Python client, which
the action installs (in its own environment) when verification is switched on.
"""

from __future__ import annotations

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
    """Poll until the rollout completes or fails; still progressing at the deadline is a failure.

    ``read`` gets the seconds left, so no single look at the cluster outlives the deadline.
    """
    started = clock()
    while True:
        left = deadline_seconds - (clock() - started)
        observation = classify(read(max(left, 0.1)), image)
        if observation.state != "progressing":
            return observation
        if clock() - started >= deadline_seconds:
            return Observation(
                "failed", f"not complete after {deadline_seconds:g} s: {observation.reason}"
            )
        sleep(min(interval_seconds, max(deadline_seconds - (clock() - started), 0)))


REQUEST_SECONDS = 10.0  # the longest one API call may take; a silent server counts as an error


def kubernetes_reader(kubeconfig: Path, namespace: str, name: str) -> Callable[[float], Snapshot]:
    """Look at the Deployment and its pods through the Kubernetes API with ``kubeconfig``."""
    from kubernetes import client, config  # installed by the action only when verifying
    from urllib3.exceptions import HTTPError

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    # No retries inside the client: urllib3's would multiply every timeout past the deadline;
    # ``wait`` retries, within it.
    configuration.retries = False
    serializer = client.ApiClient(configuration)
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
