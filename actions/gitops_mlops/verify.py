"""Verify a rollout against the cluster: the Deployment's new ReplicaSet available with the image.

``classify`` judges one Deployment snapshot (the API's JSON); ``wait`` polls until the rollout
is complete, has failed, or the deadline passes. Only ``kubernetes_reader`` needs the
Kubernetes Python client, which the action installs when verification is switched on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Snapshot = dict[str, Any] | None  # None: the Deployment does not exist (yet)


@dataclass(frozen=True)
class Observation:
    """What one look at the Deployment says about the rollout."""

    state: Literal["complete", "progressing", "failed"]
    reason: str


def classify(deployment: Snapshot, image: str) -> Observation:
    """Judge one snapshot of the Deployment for a rollout of ``image``."""
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
    generation = deployment.get("metadata", {}).get("generation", 0)
    if status.get("observedGeneration", 0) < generation:
        return Observation(
            "progressing", f"generation {generation} not yet observed by the controller"
        )
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


def wait(
    read: Callable[[], Snapshot],
    image: str,
    deadline_seconds: float,
    interval_seconds: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Observation:
    """Poll until the rollout completes or fails; still progressing at the deadline is a failure."""
    started = clock()
    while True:
        observation = classify(read(), image)
        if observation.state != "progressing":
            return observation
        if clock() - started >= deadline_seconds:
            return Observation(
                "failed", f"not complete after {deadline_seconds:g} s: {observation.reason}"
            )
        sleep(interval_seconds)


def kubernetes_reader(kubeconfig: Path, namespace: str, name: str) -> Callable[[], Snapshot]:
    """Read the Deployment through the Kubernetes API with the given kubeconfig."""
    from kubernetes import client, config  # installed by the action only when verifying

    config.load_kube_config(config_file=str(kubeconfig))
    api, serializer = client.AppsV1Api(), client.ApiClient()

    def read() -> Snapshot:
        try:
            return serializer.sanitize_for_serialization(
                api.read_namespaced_deployment(name, namespace)
            )
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    return read
