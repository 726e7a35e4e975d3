"""Build the serving image, label its lineage, smoke-test it running, push it, report its digest.

Lineage labels: git sha, model hashes (ONNX SHA-256 and the DVC hash from dvc.lock), MLflow run
id and the test metrics. The smoke test runs the image as it will run in the cluster (non-root,
read-only root filesystem, no capabilities) and uses the project's own ``smoke`` command:
/ready in time, one real prediction equal to the exported model's, one bad request refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import workflow

BUNDLE = Path("models/serving")


def lineage() -> dict[str, str]:
    """What the image is made of, for labels and the job summary."""
    git_sha = (
        os.environ.get("GITHUB_SHA")
        or subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    )
    lock = Path("dvc.lock").read_text(encoding="utf-8") if Path("dvc.lock").exists() else ""
    dvc_hash = re.search(r"path: models/serving\s+(?:hash: \w+\s+)?md5: (\w+)", lock)
    run_id = Path("mlflow/last_run_id")
    metrics = Path("metrics/metrics.json")
    return {
        "GIT_SHA": git_sha or "unknown",
        "MODEL_SHA256": hashlib.sha256((BUNDLE / "model.onnx").read_bytes()).hexdigest(),
        "MODEL_DVC_MD5": dvc_hash.group(1) if dvc_hash else "unknown",
        "MLFLOW_RUN_ID": run_id.read_text().strip() if run_id.exists() else "unknown",
        "METRICS": json.dumps(json.loads(metrics.read_text()), separators=(",", ":"))
        if metrics.exists()
        else "{}",
    }


def registry_of(image: str) -> str:
    """The registry host of an image repository (Docker Hub when the first part is no host)."""
    first = image.split("/")[0]
    return first if ("." in first or ":" in first or first == "localhost") else "docker.io"


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


def login(image: str) -> None:
    """Log in with the inputs; the password travels on stdin, never on the command line."""
    username, password = workflow.input_value("username"), workflow.input_value("password")
    if username and password:
        docker(
            "login", registry_of(image), "--username", username, "--password-stdin", stdin=password
        )


def build(tag: str, labels: dict[str, str]) -> None:
    """docker build; buildx with the GitHub Actions layer cache when both are there."""
    arguments = [f"--build-arg={name}={value}" for name, value in labels.items()]
    if base := workflow.input_value("base-image"):
        arguments.append(f"--build-arg=BASE_IMAGE={base}")
    if network := workflow.input_value("network"):
        arguments.append(f"--network={network}")
    context = workflow.input_value("context", ".")
    cached = (
        os.environ.get("ACTIONS_CACHE_URL")
        and subprocess.run(
            ["docker", "buildx", "version"], capture_output=True, check=False
        ).returncode
        == 0
    )
    if cached:
        arguments += ["--cache-from=type=gha", "--cache-to=type=gha,mode=max", "--load"]
        docker("buildx", "build", *arguments, "--tag", tag, context)
    else:
        docker("build", *arguments, "--tag", tag, context)


def free_port() -> int:
    """A local TCP port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def smoke_test(tag: str) -> None:
    """Run the image locked down as in the cluster and let the project's smoke test judge it."""
    port = free_port()
    network = workflow.input_value("network")
    where = (
        ["--network=host", f"--env=SERVE_PORT={port}"]
        if network == "host"
        else [f"--publish=127.0.0.1:{port}:8080"]
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
        if repository == image:
            return digest
    workflow.fail(f"the registry returned no digest for {tag}")
    return ""


def main() -> int:
    """Outputs ``image``, ``tag``, ``digest`` and ``model-sha256``."""
    image = workflow.input_value("image")
    if not image or "@" in image or re.search(r":[^/]*$", image):
        workflow.fail(f"image must be a repository without tag or digest, got {image!r}")
    labels = lineage()
    tag = f"{image}:sha-{labels['GIT_SHA'][:12]}"
    login(image)
    build(tag, labels)
    size = int(docker("image", "inspect", "--format={{.Size}}", tag, capture=True))
    if workflow.input_value("smoke-test", "true") == "true":
        smoke_test(tag)
    digest = push(tag, image) if workflow.input_value("push", "true") == "true" else ""
    for name, value in (
        ("image", image),
        ("tag", tag),
        ("digest", digest),
        ("model-sha256", labels["MODEL_SHA256"]),
    ):
        workflow.set_output(name, value)
    rows = [f"| {name} | `{value}` |" for name, value in labels.items()]
    rows[:0] = [f"| image | `{tag}` |", f"| digest | `{digest or 'not pushed'}` |"]
    rows.append(f"| size | {size / 1e6:.1f} MB |")
    workflow.append_summary("\n".join(["### Serving image", "", "| | |", "| --- | --- |", *rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
