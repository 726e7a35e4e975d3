"""The build-container action for real: Docker engine, offline base image, registry with auth.

One project is baked, reproduced and built once per module; the tests then inspect, run,
push and pull the image it produced.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from .baking import TEMPLATE, Project, action_env, bake, edit_params, fresh, install
from .drain import Burst, burst
from .infra import (
    Registry,
    ensure_base_image,
    ensure_docker,
    image_size,
    sh,
    start_registry,
)
from .kustomize import pod_of, with_components
from .locks import locked

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("docker")]  # one engine, one image build
SCRIPT = TEMPLATE / "actions" / "build-container" / "build_container.py"
OWN_LAYERS_BUDGET = 150_000_000  # bytes over the base image, whatever the framework


@dataclass
class Built:
    project: Project
    registry: Registry
    image: str
    tag: str
    digest: str
    summary: str
    docker_config: Path
    base: str


def build_container(
    project: Project, root: Path, **inputs: str
) -> subprocess.CompletedProcess[str]:
    """Run the action's script in the project as a runner would; outputs go under ``root``."""
    env = {
        **project.env,
        **action_env("build-container", **inputs),
        "PYTHONPATH": str(TEMPLATE / "actions"),
        "DOCKER_CONFIG": str(root / "docker-config"),
        "GITHUB_OUTPUT": str(root / "outputs"),
        "GITHUB_STEP_SUMMARY": str(root / "summary.md"),
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT)], cwd=project.root, env=env, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    ensure_docker()
    started = start_registry(tmp_path_factory.mktemp("registry"))
    yield started
    started.stop()


def build(project: Project, registry: Registry, root: Path) -> Built:
    """Build, smoke-test and push the project's serving image with the build-container action."""
    base = ensure_base_image()
    image = f"{registry.host}/example-org/{project.root.name}"
    outputs, summary = root / "outputs", root / "summary.md"
    manifest = json.loads((project.root / "models/serving/manifest.json").read_text())
    started = time.monotonic()
    result = build_container(
        project,
        root,
        image=image,
        username=registry.username,
        password=registry.password,
        base_image=base,
        network="host",
        expected_model_sha256=manifest["model_sha256"],
    )
    print(f"build-container took {time.monotonic() - started:.0f} s")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert registry.password not in result.stdout + result.stderr
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    return Built(
        project, registry, image, values["tag"], values["digest"], summary.read_text(),
        root / "docker-config", base,
    )  # fmt: skip


@pytest.fixture(scope="module")
def built(
    reproduced: Project, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Built:
    return build(reproduced, registry, tmp_path_factory.mktemp("container"))


def docker_as(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return sh("docker", *args, check=False, env={**os.environ, "DOCKER_CONFIG": str(config)})


@pytest.mark.parametrize(
    ("expected", "reason"),
    [("0" * 64, "CI validated model 000000000000, the bundle holds")],
)
def test_a_model_other_than_the_validated_one_is_refused(
    reproduced: Project, tmp_path: Path, expected: str, reason: str
) -> None:
    """CD ships exactly what CI validated: another hash stops the action before any build."""
    result = build_container(
        reproduced, tmp_path, image="localhost:1/x/y", smoke_test="false", push="false",
        expected_model_sha256=expected,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"::error::refusing to build: {reason}" in result.stdout
    assert "$ docker build" not in result.stdout


def test_a_model_the_verdict_did_not_pass_is_refused(reproduced: Project, tmp_path: Path) -> None:
    """A bundle changed after validation no longer matches its manifest: no lineage, no build."""
    project = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(reproduced.root), str(project)], check=True)
    model = project / "models" / "serving" / "model.onnx"
    model.chmod(0o644)
    model.write_bytes(model.read_bytes() + b"\0")
    changed = Project(root=project, env=reproduced.env)
    result = build_container(changed, tmp_path, image="localhost:1/x/y", smoke_test="false")
    assert result.returncode == 1
    assert "does not match the bundle manifest" in result.stdout + result.stderr
    assert "$ docker build" not in result.stdout


def test_build_outputs_digest_and_lineage(built: Built) -> None:
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", built.digest)
    head = built.project.run("git", "rev-parse", "HEAD").stdout.strip()
    assert built.tag == f"{built.image}:sha-{head[:12]}"
    labels = json.loads(
        sh("docker", "inspect", "--format={{json .Config.Labels}}", built.tag).stdout
    )
    onnx = (built.project.root / "models" / "serving" / "model.onnx").read_bytes()
    assert labels["org.opencontainers.image.revision"] == head
    assert labels["io.github.gitops-mlops.model.sha256"] == hashlib.sha256(onnx).hexdigest()
    lock = (built.project.root / "dvc.lock").read_text()
    assert labels["io.github.gitops-mlops.model.dvc-md5"] in lock
    run_id = (built.project.root / "mlflow" / "last_run_id").read_text().strip()
    assert labels["io.github.gitops-mlops.mlflow.run-id"] == run_id
    assert labels["io.github.gitops-mlops.model-card"] == (
        f"https://github.com/example-org/my-ml-project/blob/{head}/reports/model_card.md"
    )
    metrics = json.loads((built.project.root / "metrics" / "metrics.json").read_text())
    assert json.loads(labels["io.github.gitops-mlops.metrics"]) == metrics
    assert f"| digest | `{built.digest}` |" in built.summary


def test_pushed_digest_pulls_back(built: Built) -> None:
    reference = f"{built.image}@{built.digest}"
    local_id = sh("docker", "image", "inspect", "--format={{.Id}}", built.tag).stdout.strip()
    sh("docker", "rmi", built.tag)
    pulled = docker_as(built.docker_config, "pull", reference)
    assert pulled.returncode == 0, pulled.stderr
    assert (
        sh("docker", "image", "inspect", "--format={{.Id}}", reference).stdout.strip() == local_id
    )
    sh("docker", "tag", reference, built.tag)


def test_push_without_login_is_refused(built: Built, tmp_path: Path) -> None:
    anonymous = tmp_path / "no-credentials"
    anonymous.mkdir()
    tag = f"{built.registry.host}/example-org/anonymous:1"
    sh("docker", "tag", built.base, tag)
    refused = docker_as(anonymous, "push", tag)
    assert refused.returncode != 0
    assert re.search(r"no basic auth credentials|unauthorized", refused.stderr + refused.stdout)


INVENTORY = """
import json
from importlib.metadata import distributions
print(json.dumps(sorted(d.metadata["Name"] for d in distributions())))
"""


def test_image_holds_the_serving_lock_and_the_app_and_nothing_else(built: Built) -> None:
    """The budget: over the base image, exactly the serve lock's packages (one layer) and the
    app with its model (one layer); every other layer is metadata or the user account."""
    own_layers_fit_the_budget(built)


@pytest.mark.parametrize(
    "combination", ["pytorch", "tensorflow", "image_pytorch", "image_tensorflow", "rllib"]
)
def test_deep_learning_projects_serve_from_the_same_image_without_their_framework(
    combination: str, request: pytest.FixtureRequest, registry: Registry, tmp_path: Path
) -> None:
    """A deep-learning framework changes the model, not the image: onnxruntime and the app.

    The build's smoke test sends the bundle's example rows: pixel arrays for an image
    classifier, observations for RLlib's agent, and checks the labels (actions).
    """
    project: Project = request.getfixturevalue(f"reproduced_{combination}")
    built = build(project, registry, tmp_path)  # smoke-tested, then pushed
    manifest = json.loads((project.root / "models/serving/manifest.json").read_text())
    assert manifest["model_sha256"] in built.summary
    assert built.digest.startswith("sha256:")
    own_layers_fit_the_budget(built)


def own_layers_fit_the_budget(built: Built) -> None:
    base_layers = len(sh("docker", "history", "-q", built.base).stdout.split())
    history = sh(
        "docker", "history", "--no-trunc", "--human=false",
        "--format={{.CreatedBy}}\t{{.Size}}", built.tag,
    ).stdout.splitlines()  # fmt: skip
    own = [line.rsplit("\t", 1) for line in history[: len(history) - base_layers]]
    copies = {
        created.split(" in ")[-1].strip(): int(size) for created, size in own if "COPY" in created
    }
    others = {created[:60]: int(size) for created, size in own if "COPY" not in created}
    assert set(copies) == {"/opt/venv", "/app"}
    assert {name: size for name, size in others.items() if size > 64_000} == {}
    found = json.loads(
        sh("docker", "run", "--rm", "--entrypoint", "python3", built.tag, "-c", INVENTORY).stdout
    )
    requirements = built.project.root / "requirements"
    lock = set(locked(requirements / "serve.lock"))
    if (built.project.root / "models/serving/linear.json").is_file():  # the encrypted endpoint
        lock |= set(locked(requirements / "encrypted.lock"))
    assert {canonicalize_name(name) for name in found} == lock
    own_bytes = sum(copies.values()) + sum(others.values())
    assert own_bytes < OWN_LAYERS_BUDGET
    total = image_size(built.tag)
    print(
        f"serving image of {built.project.root.name}: {total / 1e6:.1f} MB = base "
        f"{image_size(built.base) / 1e6:.1f} MB + serving packages "
        f"{copies['/opt/venv'] / 1e6:.1f} MB + app and model {copies['/app'] / 1e6:.2f} MB + "
        f"{sum(others.values()) / 1e3:.1f} KB; own layers {own_bytes / 1e6:.1f} MB of the "
        f"{OWN_LAYERS_BUDGET / 1e6:.0f} MB budget"
    )


@pytest.fixture(scope="module")
def encrypted(
    reproduced: Project, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Built:
    """The default project with ``encryption.enabled``: its image holds TenSEAL too."""
    root = tmp_path_factory.mktemp("encrypted")
    project = install(fresh(reproduced.root, root), root / "venv")
    edit_params(project.root, "encryption", enabled=True)
    project.dvc("repro")
    project.run("git", "commit", "-qam", "encrypted endpoint")
    return build(project, registry, root / "container")


# Run in the project's environment against the container on PORT: every test row through the
# encrypted endpoint and through /predict in plaintext, and the request the client sends.
ENCRYPTED_CLIENT = """
import base64, json, sys, urllib.error, urllib.request
import pandas as pd, tenseal as ts
from {package}.encrypted_client import Keys, encode, predict, request_body
from {package}.serve.encrypted import Ckks, Input
url = "http://127.0.0.1:" + sys.argv[1]
rows = pd.read_csv("data/prepared/test.csv").drop(columns=["approved"]).to_dict(orient="records")
request = urllib.request.Request(url + "/predict", data=json.dumps({{"rows": rows}}).encode(),
                                 headers={{"Content-Type": "application/json"}})
plain = [p["label"] for p in json.load(urllib.request.urlopen(request))["predictions"]]
spec = json.load(urllib.request.urlopen(url + "/encrypted"))
keys = Keys(Ckks.model_validate(spec["ckks"]))
columns = {{name: [row[name] for row in rows[:2]] for name in rows[0]}}
sent = json.loads(request_body(keys, encode([Input(**i) for i in spec["inputs"]], columns)))
keyless = not ts.context_from(base64.b64decode(sent["context"])).has_secret_key()
secret = keys._context.serialize(save_secret_key=True)
sent["context"] = base64.b64encode(secret).decode()
refused = urllib.request.Request(url + "/encrypted/predict", data=json.dumps(sent).encode(),
                                 headers={{"Content-Type": "application/json"}})
try:
    urllib.request.urlopen(refused)
    answer = [200, None]
except urllib.error.HTTPError as error:
    answer = [error.code, json.load(error)["detail"][0]["msg"]]
print(json.dumps({{"encrypted": predict(url, rows), "plain": plain, "keyless": keyless,
                  "with_secret_key": answer}}))
"""


def test_an_encrypted_client_gets_every_label_from_a_server_that_never_holds_a_key(
    encrypted: Built,
) -> None:
    """The container computes on ciphertexts of the 750 test rows; the client decrypts the
    same labels /predict gives in plaintext. The client's context carries no key, and the
    server refuses one that does."""
    port = 18191
    container = run_server(encrypted.tag, port)
    try:
        wait_ready(port)
        project = encrypted.project
        script = ENCRYPTED_CLIENT.format(package=project.root.name.replace("-", "_"))
        result = json.loads(project.run(project.python, "-c", script, str(port)).stdout)
    finally:
        sh("docker", "rm", "--force", container)
    assert len(result["encrypted"]) == 750
    assert result["encrypted"] == result["plain"]
    assert result["keyless"]
    code, message = result["with_secret_key"]
    assert code == 422
    assert message.startswith("the context holds a secret key")
    own_layers_fit_the_budget(encrypted)


def run_server(tag: str, port: int, *entry: str) -> str:
    """Start the image (or ``entry``, a command run in it instead) on the host's ``port``."""
    entrypoint = [f"--entrypoint={entry[0]}"] if entry else []
    return sh(
        "docker", "run", "--detach", "--read-only", "--cap-drop=ALL",
        "--security-opt=no-new-privileges", "--network=host", f"--env=SERVE_PORT={port}",
        *entrypoint, tag, *entry[1:],
    ).stdout.strip()  # fmt: skip


def wait_ready(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/ready")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"container on {port} never became ready")


def test_container_runs_as_non_root_with_read_only_root(built: Built) -> None:
    assert sh("docker", "inspect", "--format={{.Config.User}}", built.tag).stdout.strip() == (
        "10001:10001"
    )
    container = run_server(built.tag, 18181)
    try:
        wait_ready(18181)
        assert sh("docker", "exec", container, "id", "-u").stdout.strip() == "10001"
        write = sh("docker", "exec", container, "touch", "/app/probe", check=False)
        assert write.returncode != 0
        assert "Read-only file system" in write.stderr
    finally:
        sh("docker", "rm", "--force", container)


@pytest.mark.parametrize("kind", ["KIND_CPU", "KIND_GPU"])
def test_the_triton_components_init_container_lays_out_exports_repository(
    built: Built, tmp_path: Path, kind: str
) -> None:
    """The Triton component's init container, run from the built image as the manifest says,
    writes the model repository export wrote (the one tests/test_interop.py serves with a real
    tritonserver), with the instances on the CPU or, for the GPU component, on the GPU."""
    components = ["triton", "triton-gpu"] if kind == "KIND_GPU" else ["triton"]
    (copier,) = pod_of(with_components(built.project.root, tmp_path, *components))["initContainers"]
    (setting,) = copier["env"]
    models = tmp_path / "models"
    models.mkdir(mode=0o777)
    models.chmod(0o777)  # the image's user writes here
    sh(
        "docker", "run", "--rm", "--read-only", "--cap-drop=ALL", f"--volume={models}:/models",
        f"--env={setting['name']}={setting['value']}", f"--entrypoint={copier['command'][0]}",
        built.tag, *copier["command"][1:], *copier["args"],
    )  # fmt: skip
    exported = built.project.root / "models" / "triton"
    files = sorted(path.relative_to(exported) for path in exported.rglob("*") if path.is_file())
    assert sorted(path.relative_to(models) for path in models.rglob("*") if path.is_file()) == files
    for file in files:
        expected = (exported / file).read_bytes()
        if file.name == "config.pbtxt":
            assert expected.count(b"kind: KIND_CPU") == 1
            expected = expected.replace(b"kind: KIND_CPU", f"kind: {kind}".encode())
        assert (models / file).read_bytes() == expected, file


STRAGGLERS = {"on its way", "kept alive", "late"}
# The app under uvicorn.run, as its docs show: the drain test must fail with it.
STOCK_UVICORN = """
import uvicorn
from {package}.serve.app import ServingApp
from {package}.serve.settings import ServeSettings
settings = ServeSettings()
uvicorn.run(ServingApp(settings), host=settings.host, port=settings.port)
"""


def signalled_burst(built: Built, port: int, signal: str, *entry: str) -> tuple[Burst, int]:
    """A burst of 1,000-row predictions (see tests/drain.py) with ``docker kill --signal``."""
    container = run_server(built.tag, port, *entry)
    try:
        wait_ready(port)
        example = json.loads((built.project.root / "models/serving/example.json").read_text())
        rows = (example["rows"] * 1000)[:1000]
        stop = functools.partial(sh, "docker", "kill", f"--signal={signal}", container)
        result = burst(port, rows, stop)
        return result, int(sh("docker", "wait", container).stdout)
    finally:
        sh("docker", "rm", "--force", container)


def stragglers(result: Burst) -> dict[tuple[str, str], int]:
    return {key: n for key, n in result.outcomes.items() if key[1] in STRAGGLERS}


def test_sigterm_completes_every_request_received(built: Built) -> None:
    """SIGTERM with ≥ 50 predictions in flight by the server's own gauge: every request
    already received, and every straggler, gets its predictions."""
    result, exit_code = signalled_burst(built, 18182, "TERM")
    assert result.in_flight_at_signal >= 50, result
    assert {outcome for outcome, _ in result.outcomes} == {"completed"}, result.outcomes
    assert result.outcomes["completed", "in flight"] >= result.in_flight_at_signal
    assert stragglers(result) == {("completed", phase): 5 for phase in STRAGGLERS}
    assert exit_code == 0  # drained; the SIGTERM uvicorn re-raises is ignored by PID 1


@pytest.mark.parametrize("stop", ["SIGKILL", "SIGTERM to stock uvicorn"])
def test_the_drain_test_fails_without_the_drain(built: Built, stop: str) -> None:
    """The burst above tells a drain from none: killed, or stock uvicorn's shutdown (which
    closes connections whose request has not fully arrived and refuses late ones)."""
    if stop == "SIGKILL":
        result, exit_code = signalled_burst(built, 18183, "KILL")
        assert exit_code == 137
        assert result.in_flight_at_signal >= 50
        # Responses already on the wire when the kill lands still arrive: not all 50 are lost.
        assert result.outcomes["lost", "in flight"] > 0
    else:
        stock = STOCK_UVICORN.format(package=built.project.package)
        result, exit_code = signalled_burst(built, 18184, "TERM", "python3", "-c", stock)
        assert exit_code == 0
        # It finishes the predictions it had begun (a request caught mid-send may be lost).
        assert result.outcomes["completed", "in flight"] >= result.in_flight_at_signal
    assert stragglers(result) == {
        ("lost", "on its way"): 5,
        ("lost", "kept alive"): 5,
        ("refused", "late"): 5,
    }


def test_labels_carry_the_answers_verbatim(tmp_path: Path) -> None:
    """Quotes, backslashes, $VARIABLES and unicode in an answer reach the image label as typed
    (LABEL expands variables and JSON escapes are not Dockerfile escapes)."""
    ensure_docker()
    description = 'Bob\'s "model" \\ costs $HOME and ${PATH}, é ☃'
    project = bake(tmp_path / "out", description=description)
    dockerfile = (project / "Dockerfile").read_text()
    final_stage = dockerfile[dockerfile.rindex("FROM ${BASE_IMAGE}") :].splitlines()
    # The build arguments and the LABEL instruction with its continuation lines.
    start = next(i for i, line in enumerate(final_stage) if line.startswith("ARG"))
    end = next(i for i, line in enumerate(final_stage) if line.startswith("LABEL"))
    while final_stage[end].endswith("\\"):
        end += 1
    header = final_stage[start : end + 1]
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "Dockerfile").write_text("\n".join(["FROM scratch", *header]) + "\n")
    tag = "gitops-mlops/labels:test"
    sh("docker", "build", "--network=host", "--tag", tag, str(tmp_path / "labels"))
    try:
        labels = json.loads(sh("docker", "inspect", "--format={{json .Config.Labels}}", tag).stdout)
    finally:
        sh("docker", "rmi", tag, check=False)
    assert labels["org.opencontainers.image.description"] == description
    assert labels["org.opencontainers.image.title"] == "my-ml-project"
