"""A local stand-in for the Kubernetes API that a rollout's verification reads.

No API server can run here, so this HTTP server answers the calls verification makes (read a
Deployment, list its pods) from a script of steps, one step per look: Deployment JSON, an API
error (``recordings/kubernetes/status_*.json``), or silence longer than the client waits.
Requests to a Service through the API's proxy (``/api/v1/namespaces/<ns>/services/
<service>:http/proxy/<path>``) get scripted answers per path, in turn, the last repeated.
The JSON is hand-assembled in the documented shape of the API's responses, not captured from
a cluster. The real ``kubernetes`` Python client talks to it over HTTP through an ordinary
kubeconfig.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .local_http import JSONHandler, LocalServer

RECORDINGS = Path(__file__).parent / "recordings" / "kubernetes"


def recording(name: str, **replace: str) -> dict[str, Any]:
    text = (RECORDINGS / f"{name}.json").read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    return json.loads(text)


@dataclass
class Step:
    """What one look at the cluster gets."""

    deployment: dict[str, Any] | None = None  # None with status 200: use ``status``'s body
    status: int = 200
    pods: list[dict[str, Any]] = field(default_factory=list)
    silence: float = 0.0  # seconds to say nothing before answering


@dataclass
class FakeKubernetes:
    steps: list[Step]
    looks: int = 0
    started: float = field(default_factory=time.monotonic)
    # The Service behind the proxy: path -> (status, JSON body) answers, in turn.
    service: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    proxied: list[str] = field(default_factory=list)  # the proxied paths, as requested

    def proxy(self, path: str) -> tuple[int, Any]:
        self.proxied.append(path)
        answers = self.service.get(path, [(404, {"error": "not found"})])
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def step(self) -> Step:
        return self.steps[min(self.looks, len(self.steps) - 1)]


class KubernetesServer(LocalServer):
    """Serve a :class:`FakeKubernetes` on a free port; ``kubeconfig`` points a client at it."""

    def __init__(self, fake: FakeKubernetes) -> None:
        class Handler(JSONHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if re.fullmatch(r"/apis/apps/v1/namespaces/[^/]+/deployments/[^/?]+", self.path):
                    step = fake.step()
                    fake.looks += 1
                    time.sleep(step.silence)
                    if step.status != 200:
                        name = "status_404" if step.status == 404 else "status_500"
                        return self.answer(step.status, recording(name))
                    return self.answer(200, step.deployment)
                if re.fullmatch(r"/api/v1/namespaces/[^/]+/pods\?labelSelector=.+", self.path):
                    pods = fake.steps[min(fake.looks, len(fake.steps)) - 1].pods
                    listing = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": pods}
                    return self.answer(200, listing)
                # The client escapes the colon (the API server unescapes it); slashes stay.
                service = r"/api/v1/namespaces/[^/]+/services/[^/]+(?::|%3A)http/proxy/(.+)"
                if proxy := re.fullmatch(service, self.path):
                    return self.answer(*fake.proxy(proxy.group(1)))
                return self.answer(404, recording("status_404"))

        super().__init__(Handler)

    def kubeconfig(self, namespace: str) -> str:
        return (
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: local\n  cluster:\n    server: {self.url}\n"
            "users:\n- name: ci\n  user:\n    token: not-a-secret\n"
            f"contexts:\n- name: local\n  context:\n    cluster: local\n    user: ci\n"
            f"    namespace: {namespace}\n"
            "current-context: local\n"
        )
