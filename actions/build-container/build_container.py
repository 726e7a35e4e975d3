"""Build the serving image of a validated model, label its lineage, smoke-test it, push it.

The project describes itself (``make lineage``): the image is built only when the model in
the workspace is the one its verdict passed and, when given, the one CI validated
(``expected-model-sha256``), so CD ships exactly the validated artifact and never a retrain.
Labels: git sha, model hashes (ONNX SHA-256 and the DVC hash), MLflow run id, test metrics.
The smoke test runs the image as it will run in the cluster (non-root, read-only root
filesystem, no capabilities) and uses the project's own ``make smoke``: /ready in time, one
real prediction equal to the exported model's, one bad request refused.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass

from gitops_mlops import contract, inputs, workflow
from gitops_mlops.contract import Lineage


@dataclass(frozen=True)
class Inputs:
    """This action's inputs (see action.yml)."""

    image: str
    username: str
    password: str
    base_image: str
    network: str
    smoke_test: bool
    push: bool
    expected_model_sha256: str


def refusal(lineage: Lineage, expected: str) -> str | None:
    """Why this workspace's model must not be shipped, or None when it may."""
    model, verdict = lineage.model.sha256, lineage.verdict
    if verdict.model_sha256 != model:
        judged = verdict.model_sha256[:12]
        return f"the verdict judged model {judged}, the bundle holds {model[:12]}"
    if not verdict.passed:
        return f"the model was rejected by its gates: {'; '.join(verdict.failed)}"
    if expected and expected != model:
        return f"CI validated model {expected[:12]}, the bundle holds {model[:12]}"
    return None


def labels(lineage: Lineage) -> dict[str, str]:
    """Build arguments that become the image's lineage labels."""
    return {
        "GIT_SHA": os.environ.get("GITHUB_SHA") or lineage.git_sha,
        "MODEL_SHA256": lineage.model.sha256,
        "MODEL_DVC_MD5": lineage.model.dvc_md5,
        "MLFLOW_RUN_ID": lineage.mlflow_run_id,
        "METRICS": json.dumps(lineage.metrics, separators=(",", ":"), sort_keys=True),
    }


def registry_of(image: str) -> str:
    """The registry host of an image repository (Docker Hub when the first part is no host)."""
    first = image.split("/")[0]
    return first if ("." in first or ":" in first or first == "localhost") else "docker.io"


def short_name(repository: str) -> str:
    """A repository as Docker records it: Docker Hub's host and ``library/`` left out."""
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        repository = repository.removeprefix(prefix)
    return repository.removeprefix("library/")


def docker(*args: str, stdin: str | None = None, capture: bool = False) -> str:
    """Run the docker CLI; fail the step with its output when it fails."""
    print(f"$ docker {' '.join(args)}", flush=True)
    result = subprocess.run(
        ["docker", *args],
        input=stdin,
        text=True,
        capture_output=capture or stdin is not None,
        check=False,
    )
    if result.returncode != 0:
        workflow.fail(
            f"docker {args[0]} failed: {(result.stderr or result.stdout or '').strip()[-2000:]}"
        )
    return (result.stdout or "").strip()


def login(given: Inputs) -> None:
    """Log in with the inputs; the password travels on stdin, never on the command line."""
    if given.username and given.password:
        registry = registry_of(given.image)
        docker(
            "login", registry, "--username", given.username, "--password-stdin",
            stdin=given.password,
        )  # fmt: skip


def build(tag: str, given: Inputs, lineage: Lineage) -> None:
    """docker build; buildx with the GitHub Actions layer cache when both are there."""
    arguments = [f"--build-arg={name}={value}" for name, value in labels(lineage).items()]
    if given.base_image:
        arguments.append(f"--build-arg=BASE_IMAGE={given.base_image}")
    if given.network:
        arguments.append(f"--network={given.network}")
    cached = (
        os.environ.get("ACTIONS_CACHE_URL")
        and subprocess.run(
            ["docker", "buildx", "version"], capture_output=True, check=False
        ).returncode
        == 0
    )
    if cached:
        arguments += ["--cache-from=type=gha", "--cache-to=type=gha,mode=max", "--load"]
        docker("buildx", "build", *arguments, "--tag", tag, lineage.image.context)
    else:
        docker("build", *arguments, "--tag", tag, lineage.image.context)


def free_port() -> int:
    """A local TCP port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def smoke_test(tag: str, given: Inputs, lineage: Lineage) -> None:
    """Run the image locked down as in the cluster and let the project's smoke test judge it."""
    port = free_port()
    where = (
        ["--network=host", f"--env=SERVE_PORT={port}"]
        if given.network == "host"
        else [f"--publish=127.0.0.1:{port}:{lineage.image.port}"]
    )
    container = docker(
        "run", "--detach", "--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges",
        "--user=10001:10001", *where, tag, capture=True,
    )  # fmt: skip
    try:
        status = workflow.run(["make", "smoke", f"URL=http://127.0.0.1:{port}"])
        if status != 0:
            logs = subprocess.run(
                ["docker", "logs", container], capture_output=True, text=True, check=False
            )
            print(logs.stdout + logs.stderr)
            workflow.fail(f"smoke test of {tag} failed: see the log above")
    finally:
        subprocess.run(["docker", "rm", "--force", container], capture_output=True, check=False)


def push(tag: str, image: str) -> str:
    """Push and return the digest the registry assigned."""
    docker("push", tag)
    for reference in json.loads(
        docker("inspect", "--format={{json .RepoDigests}}", tag, capture=True)
    ):
        repository, _, digest = reference.partition("@")
        if short_name(repository) == short_name(image):
            return digest
    workflow.fail(f"the registry returned no digest for {tag}")


def main() -> int:
    """Outputs ``image``, ``tag``, ``digest`` and ``model-sha256``."""
    given = inputs.read(Inputs)
    image = given.image
    if not image or "@" in image or re.search(r":[^/]*$", image):
        workflow.fail(f"image must be a repository without tag or digest, got {image!r}")
    lineage = contract.describe()
    if reason := refusal(lineage, given.expected_model_sha256):
        workflow.fail(f"refusing to build: {reason}")
    build_args = labels(lineage)
    tag = f"{image}:sha-{build_args['GIT_SHA'][:12]}"
    login(given)
    build(tag, given, lineage)
    size = int(docker("image", "inspect", "--format={{.Size}}", tag, capture=True))
    if given.smoke_test:
        smoke_test(tag, given, lineage)
    digest = push(tag, image) if given.push else ""
    for name, value in (
        ("image", image),
        ("tag", tag),
        ("digest", digest),
        ("model-sha256", lineage.model.sha256),
    ):
        workflow.set_output(name, value)
    rows = [f"| {name} | `{value}` |" for name, value in build_args.items()]
    rows[:0] = [f"| image | `{tag}` |", f"| digest | `{digest or 'not pushed'}` |"]
    rows.append(f"| size | {size / 1e6:.1f} MB |")
    workflow.append_summary("\n".join(["### Serving image", "", "| | |", "| --- | --- |", *rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
