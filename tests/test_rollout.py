"""The rollout action against real git: a bare repository stands for the remote.

The Kubernetes API cannot run here. Verification is tested two ways, both with JSON
hand-assembled in the documented shape of the API's responses (not captured from a cluster):
``classify`` against Deployment sequences (``recordings/deployments``), and the rollout script
with the real ``kubernetes`` client, installed as the action installs it, against a local
HTTP server (``tests/kubernetes_api.py``) that answers with Deployments, pods, 404s, 500s and
silence. The real end-to-end check runs on GitHub runners against a kind cluster.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gitops_mlops import overlay, verify

from .baking import TEMPLATE, action_env, bake, load_action_script
from .github_api import FakeGitHub, Server
from .kubernetes_api import FakeKubernetes, KubernetesServer, Step, recording

ROLLOUT = TEMPLATE / "actions" / "rollout"
rollout = load_action_script("rollout", "rollout")

IMAGE = "localhost:5000/example-org/my-ml-project"
FIRST, SECOND = "sha256:" + "1" * 64, "sha256:" + "2" * 64
SEQUENCES = json.loads((TEMPLATE / "tests/recordings/deployments/sequences.json").read_text())
STAGING = Path("deploy/k8s/overlays/staging/kustomization.yaml")
IDENTITY = {
    "GIT_AUTHOR_NAME": "ci",
    "GIT_AUTHOR_EMAIL": "ci@example.com",
    "GIT_COMMITTER_NAME": "ci",
    "GIT_COMMITTER_EMAIL": "ci@example.com",
}


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bare repository holding a freshly baked project on main."""
    for key, value in IDENTITY.items():
        monkeypatch.setenv(key, value)
    project = bake(tmp_path / "baked")
    git("add", "-A", cwd=project)
    git("commit", "-qm", "project", cwd=project)
    bare = tmp_path / "remote.git"
    git("clone", "-q", "--bare", str(project), str(bare), cwd=tmp_path)
    return bare


def clone(remote: Path, name: str) -> Path:
    """A checkout as actions/checkout makes it: the one branch, no other remote branches."""
    target = remote.parent / name
    git(
        "clone",
        "-q",
        "--single-branch",
        "--branch",
        "main",
        str(remote),
        str(target),
        cwd=remote.parent,
    )
    return target


def remote_file(remote: Path, path: Path) -> str:
    return git("show", f"main:{path.as_posix()}", cwd=remote)


def rollout_env(
    checkout: Path, digest: str, runner: dict[str, str] | None = None, **inputs: str
) -> dict[str, str]:
    """The environment a runner gives the rollout script; ``runner`` adds GitHub's variables."""
    return {
        **subprocess.os.environ,
        **IDENTITY,
        **action_env(
            "rollout",
            **{"environment": "staging", "image": IMAGE, "model_version": "4df214d7844f"}
            | inputs
            | {"digest": digest},
        ),
        "GITHUB_REF_NAME": "main",
        "GITHUB_OUTPUT": str(checkout.parent / f"{checkout.name}.outputs"),
        "PYTHONPATH": str(TEMPLATE / "actions"),
        **(runner or {}),
    }


def run_rollout(
    checkout: Path, digest: str, runner: dict[str, str] | None = None, **inputs: str
) -> subprocess.CompletedProcess[str]:
    """The rollout script as a runner runs it."""
    return subprocess.run(
        [sys.executable, str(ROLLOUT / "rollout.py")],
        cwd=checkout,
        env=rollout_env(checkout, digest, runner, **inputs),
        capture_output=True,
        text=True,
        check=False,
    )


def outputs(checkout: Path) -> dict[str, str]:
    """The step outputs the last rollouts in ``checkout`` wrote to GITHUB_OUTPUT."""
    path = checkout.parent / f"{checkout.name}.outputs"
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def rolled_out(checkout: Path, digest: str, **inputs: str) -> subprocess.CompletedProcess[str]:
    """Run the rollout and require it to succeed, showing its output when it does not."""
    result = run_rollout(checkout, digest, **inputs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


# -- overlay editing -------------------------------------------------------------------------


def test_set_image_changes_only_the_image_lines(remote: Path) -> None:
    before = remote_file(remote, STAGING) + "\n"
    after = overlay.set_image(before, "model-server", IMAGE, FIRST)
    changed = [
        (old, new)
        for old, new in zip(before.splitlines(), after.splitlines(), strict=True)
        if old != new
    ]
    assert changed == [
        ("    newName: ghcr.io/example-org/my-ml-project", f"    newName: {IMAGE}"),
        (f"    digest: sha256:{'0' * 64}", f"    digest: {FIRST}"),
    ]


def test_set_image_replaces_a_tag_and_keeps_comments() -> None:
    text = (
        "images:  # managed by CD\n"
        "  - name: other\n"
        "    newTag: v1\n"
        "  - name: model-server # the server\n"
        "    newName: old/repo # where\n"
        "    newTag: latest\n"
        "patches: []\n"
    )
    assert overlay.set_image(text, "model-server", IMAGE, FIRST) == (
        "images:  # managed by CD\n"
        "  - name: other\n"
        "    newTag: v1\n"
        "  - name: model-server # the server\n"
        f"    newName: {IMAGE} # where\n"
        f"    digest: {FIRST}\n"
        "patches: []\n"
    )


@pytest.mark.parametrize(
    ("text", "image", "digest", "message"),
    [
        ("images:\n  - name: other\n", IMAGE, FIRST, "no images: entry named 'model-server'"),
        ("resources: []\n", IMAGE, FIRST, "no images: entry"),
        ("images:\n  - name: model-server\n", IMAGE, "sha256:abc", "digest must look like"),
        ("images:\n  - name: model-server\n", f"{IMAGE}@{FIRST}", FIRST, "without tag or digest"),
    ],
    ids=["other-entry", "no-images", "short-digest", "image-with-digest"],
)
def test_set_image_refuses_bad_input(text: str, image: str, digest: str, message: str) -> None:
    with pytest.raises(overlay.OverlayError, match=message):
        overlay.set_image(text, "model-server", image, digest)


# -- GitOps against a bare remote --------------------------------------------------------------


def test_rollout_commits_the_digest_and_nothing_else(remote: Path) -> None:
    checkout = clone(remote, "ci")
    before = git("rev-parse", "main", cwd=remote)
    result = run_rollout(checkout, FIRST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"digest: {FIRST}" in remote_file(remote, STAGING)
    changed = git("diff", "--name-only", before, "main", cwd=remote).splitlines()
    assert changed == [STAGING.as_posix()]
    stat = git("diff", "--numstat", before, "main", cwd=remote)
    assert stat.split()[:2] == ["2", "2"]
    message = git("log", "-1", "--format=%B", "main", cwd=remote)
    assert message.startswith("Roll out model 4df214d7844f to staging")
    assert f"Image: {IMAGE}@{FIRST}" in message
    sha = git("rev-parse", "main", cwd=remote)
    assert outputs(checkout) == {"commit": sha, "verification": "skipped"}


def test_rolling_out_the_same_digest_twice_commits_nothing(remote: Path) -> None:
    checkout = clone(remote, "ci")
    rolled_out(checkout, FIRST)
    head = git("rev-parse", "main", cwd=remote)
    again = run_rollout(checkout, FIRST)
    assert again.returncode == 0, again.stderr
    assert "nothing to commit" in again.stdout
    assert git("rev-parse", "main", cwd=remote) == head


def test_concurrent_rollouts_are_rebased_not_lost(remote: Path) -> None:
    first, second = clone(remote, "first"), clone(remote, "second")  # both start from one head
    production = Path("deploy/k8s/overlays/production/kustomization.yaml")
    rolled_out(first, FIRST)
    late = run_rollout(second, SECOND, environment="production")  # its clone is now stale
    assert late.returncode == 0, late.stdout + late.stderr
    assert f"digest: {FIRST}" in remote_file(remote, STAGING)
    assert f"digest: {SECOND}" in remote_file(remote, production)
    history = git("log", "--format=%s", "main", cwd=remote).splitlines()
    assert history[:2] == [
        "Roll out model 4df214d7844f to production",
        "Roll out model 4df214d7844f to staging",
    ]


def test_a_stale_rollout_of_the_same_overlay_lands_on_top(remote: Path) -> None:
    first, second = clone(remote, "first"), clone(remote, "second")
    rolled_out(first, FIRST)
    rolled_out(second, SECOND)
    assert f"digest: {SECOND}" in remote_file(remote, STAGING)
    assert len(git("log", "--format=%H", "main", cwd=remote).splitlines()) == 3


# -- verification --------------------------------------------------------------------------


@pytest.mark.parametrize("name", SEQUENCES["sequences"], ids=list(SEQUENCES["sequences"]))
def test_verify_classifies_recorded_deployment_sequences(name: str) -> None:
    case = SEQUENCES["sequences"][name]
    snapshots = iter(case["snapshots"])
    last = case["snapshots"][-1]
    now = [0.0]  # one poll a second

    def sleep(seconds: float) -> None:
        now[0] += 1.0

    observation = verify.wait(
        lambda _left: verify.Snapshot(next(snapshots, last)),
        SEQUENCES["image"],
        deadline_seconds=5,
        clock=lambda: now[0],
        sleep=sleep,
    )
    assert observation.state == case["expected"], observation.reason
    assert case["reason"] in observation.reason


# -- verification through the real Kubernetes client -------------------------------------------


@pytest.fixture(scope="module")
def kubernetes_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A virtualenv with the Kubernetes client, made as the rollout action makes it."""
    venv = tmp_path_factory.mktemp("rollout-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pin = re.search(r'"(kubernetes==[\d.]+)"', (ROLLOUT / "action.yml").read_text()).group(1)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", pin],
        check=True,
    )
    return str(venv / "bin" / "python")


def deployment(**status: object) -> dict:
    """The recorded complete Deployment (image SEQUENCES["image"]) with ``status`` changes."""
    found = json.loads(json.dumps(SEQUENCES["sequences"]["complete"]["snapshots"][-1]))
    found["spec"]["selector"] = {"matchLabels": {"app.kubernetes.io/name": "model-server"}}
    generation = status.pop("generation", None)
    if generation is not None:
        found["metadata"]["generation"] = generation
    found["status"].update(status)
    return found


def verified_rollout(
    remote: Path, python: str, steps: list[Step] | FakeKubernetes, timeout: float, **inputs: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, str], float]:
    """Roll out FIRST (verified), then the recorded image verified against ``steps``."""
    checkout = clone(remote, "ci")
    rolled_out(checkout, FIRST)
    image, digest = SEQUENCES["image"].split("@")
    fake = steps if isinstance(steps, FakeKubernetes) else FakeKubernetes(steps)
    started = time.monotonic()
    with KubernetesServer(fake) as cluster:
        result = subprocess.run(
            [python, str(ROLLOUT / "rollout.py")],
            cwd=checkout,
            env=rollout_env(
                checkout,
                digest,
                image=image,
                kubeconfig=cluster.kubeconfig("my-ml-project-staging"),
                timeout_seconds=str(timeout),
                poll_seconds="0.2",
                **inputs,
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
    return result, outputs(checkout), time.monotonic() - started


def assert_reverted(remote: Path, result: subprocess.CompletedProcess[str], out: dict) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert out["verification"] == "failed"
    assert f"digest: {FIRST}" in remote_file(remote, STAGING)
    assert out["revert-commit"] == git("rev-parse", "main", cwd=remote)


pytestmark_kubernetes = pytest.mark.xdist_group("kubernetes-client")


@pytestmark_kubernetes
def test_api_errors_and_a_missing_deployment_are_retried_until_complete(
    remote: Path, kubernetes_python: str
) -> None:
    steps = [Step(status=500), Step(status=404), Step(status=500), Step(deployment())]
    result, out, _ = verified_rollout(remote, kubernetes_python, steps, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert out["verification"] == "complete"
    assert "rollout verified: 2/2 replicas updated and available" in result.stdout


@pytestmark_kubernetes
def test_a_silent_api_server_cannot_outlive_the_deadline(
    remote: Path, kubernetes_python: str
) -> None:
    """Each call waits at most the time left; at the deadline the rollout is reverted."""
    result, out, took = verified_rollout(
        remote, kubernetes_python, [Step(deployment(), silence=60)], timeout=3
    )
    assert_reverted(remote, result, out)
    assert "not complete after 3 s: the Kubernetes API did not answer" in result.stdout
    print(f"verification against a silent API took {took:.1f} s for a 3 s deadline")
    assert took < 3 + 5  # the deadline, plus starting Python and pushing the revert


@pytestmark_kubernetes
def test_crash_looping_pods_fail_at_once_and_are_reverted(
    remote: Path, kubernetes_python: str
) -> None:
    crashing = recording("pod_crash_looping", IMAGE=SEQUENCES["image"])
    progressing = deployment(updatedReplicas=1, availableReplicas=1, replicas=2)
    result, out, took = verified_rollout(
        remote, kubernetes_python, [Step(progressing, pods=[crashing])], timeout=120
    )
    assert_reverted(remote, result, out)
    assert "pod model-server-7d9f6c8b5-x2k4q crash-looping (CrashLoopBackOff" in result.stdout
    assert took < 30  # judged from the pod, long before the 120 s deadline


@pytestmark_kubernetes
def test_an_old_failure_condition_of_an_unobserved_generation_is_not_a_failure(
    remote: Path, kubernetes_python: str
) -> None:
    """A ProgressDeadlineExceeded left from the last rollout says nothing about this one."""
    stale = deployment(
        generation=3,
        observedGeneration=2,
        conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                     "message": "ReplicaSet \"model-server-6c5d\" has timed out progressing."}],
    )  # fmt: skip
    done = deployment(generation=3, observedGeneration=3)
    result, out, _ = verified_rollout(
        remote, kubernetes_python, [Step(stale), Step(stale), Step(done)], timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert out["verification"] == "complete"


MODEL = "4df214d7844f" + "0" * 52  # the model-version rollout_env gives, as a full hash


def serving(model_sha256: str | None, ready: list[int]) -> dict[str, list[tuple[int, Any]]]:
    """A v2 Service's answers: server readiness in turn, then the model (with its hash)."""
    metadata: dict[str, Any] = {"name": "my-ml-project", "versions": ["1"], "platform": "x"}
    if model_sha256:
        metadata["parameters"] = {"model_sha256": model_sha256}
    return {
        "v2/health/ready": [(status, None) for status in ready],
        "v2/models/my-ml-project/ready": [(200, None)],
        "v2/models/my-ml-project": [(200, metadata)],
    }


@pytestmark_kubernetes
@pytest.mark.parametrize("reports_hash", [True, False], ids=["this project's server", "Triton"])
def test_the_service_must_answer_v2_for_the_model_after_the_deployment(
    remote: Path, kubernetes_python: str, reports_hash: bool
) -> None:
    """Through the API's service proxy, until ready; a server reporting a hash must match."""
    fake = FakeKubernetes(
        [Step(deployment())], service=serving(MODEL if reports_hash else None, [503, 503, 200])
    )
    result, out, _ = verified_rollout(
        remote, kubernetes_python, fake, timeout=30, model_name="my-ml-project",
        model_version=MODEL,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert out["verification"] == "complete"
    which = "model 4df214d7844f" if reports_hash else "a server that reports no model hash"
    assert f"rollout verified: the Service answers v2 requests for 'my-ml-project' ({which})" in (
        result.stdout
    )
    # Slashes stay slashes in the proxied paths; three rounds: not ready twice, then ready.
    probes = ["v2/health/ready", "v2/models/my-ml-project/ready", "v2/models/my-ml-project"]
    assert fake.proxied == probes * 3


@pytestmark_kubernetes
def test_a_service_serving_another_model_is_reverted(remote: Path, kubernetes_python: str) -> None:
    fake = FakeKubernetes([Step(deployment())], service=serving("ab" * 32, [200]))
    result, out, _ = verified_rollout(
        remote, kubernetes_python, fake, timeout=3, model_name="my-ml-project",
        model_version=MODEL,
    )  # fmt: skip
    assert_reverted(remote, result, out)
    assert "the Service serves model abababababab, not 4df214d7844f" in result.stdout


# -- promotion pull requests and refusals -----------------------------------------------------


def promote(checkout: Path, github: FakeGitHub, url: str) -> subprocess.CompletedProcess[str]:
    """A production promotion (pull-request mode) against the local GitHub stand-in."""
    return run_rollout(
        checkout,
        FIRST,
        environment="production",
        mode="pull-request",
        github_token="ghs_test",  # noqa: S106 - the local stand-in accepts any token
        runner={
            "GITHUB_API_URL": url,
            "GITHUB_REPOSITORY": github.repository,
            "GITHUB_STEP_SUMMARY": str(checkout.parent / f"{checkout.name}.summary"),
        },
    )


def test_rerunning_a_promotion_is_idempotent(remote: Path) -> None:
    """A re-run (a new clone, no remote-tracking branch) replaces the branch, reuses the PR."""
    github = FakeGitHub()
    with Server(github) as server:
        first = promote(clone(remote, "run-1"), github, server.url)
        again = promote(clone(remote, "run-2"), github, server.url)
    assert first.returncode == 0, first.stdout + first.stderr
    assert again.returncode == 0, again.stdout + again.stderr
    branch = f"promote/production-{FIRST[7:19]}"
    assert [(r.method, r.path.split("?")[0].rsplit("/", 1)[-1]) for r in github.requests] == [
        ("GET", "pulls"),
        ("POST", "pulls"),
        ("GET", "pulls"),
    ]
    assert len(github.pulls) == 1
    assert outputs(remote.parent / "run-2")["pull-request-url"] == github.pulls[0]["html_url"]
    shown = git("show", f"{branch}:deploy/k8s/overlays/production/kustomization.yaml", cwd=remote)
    assert f"digest: {FIRST}" in shown


def test_a_first_push_where_actions_may_not_open_pull_requests_still_succeeds(
    remote: Path,
) -> None:
    """GitHub's default for new repositories: the branch is pushed, the link printed."""
    github = FakeGitHub(forbid_pull_requests=True)
    checkout = clone(remote, "ci")
    with Server(github) as server:
        result = promote(checkout, github, server.url)
    assert result.returncode == 0, result.stdout + result.stderr
    branch = f"promote/production-{FIRST[7:19]}"
    assert git("rev-parse", "--verify", f"refs/heads/{branch}", cwd=remote)
    compare = f"https://github.com/{github.repository}/compare/main...{branch}?expand=1"
    assert compare in result.stdout
    assert "GitHub Actions is not permitted to create or approve pull requests" in result.stdout
    assert "Allow GitHub Actions to create and approve pull requests" in result.stdout
    assert compare in (remote.parent / "ci.summary").read_text()
    assert outputs(checkout)["pull-request-url"] == ""


def test_a_push_the_server_refuses_fails_once_with_its_reason(remote: Path) -> None:
    """Branch protection (here a pre-receive hook) is not a race: no retries, its words shown."""
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\necho 'GH006: Protected branch update failed for refs/heads/main.'\nexit 1\n"
    )
    hook.chmod(0o755)
    checkout = clone(remote, "ci")
    result = run_rollout(checkout, FIRST)
    assert result.returncode == 1
    assert "::error::push to origin/main refused: GH006: Protected branch" in result.stdout
    assert "[remote rejected]" in result.stdout
    assert "still rejected after" not in result.stdout + result.stderr


def test_racing_rollouts_in_two_processes_lose_no_update(remote: Path) -> None:
    """Two rollout processes start together, ten rounds: both commits land every time."""
    production = Path("deploy/k8s/overlays/production/kustomization.yaml")
    checkouts = {"staging": clone(remote, "a"), "production": clone(remote, "b")}
    for round_number in range(10):
        digests = {
            environment: f"sha256:{index}{round_number:02d}".ljust(71, "e")
            for index, environment in enumerate(checkouts, start=3)
        }
        for checkout in checkouts.values():
            git("pull", "-q", "--ff-only", cwd=checkout)
        racing = {
            environment: subprocess.Popen(
                [sys.executable, str(ROLLOUT / "rollout.py")],
                cwd=checkout,
                env=rollout_env(checkout, digests[environment], environment=environment),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for environment, checkout in checkouts.items()
        }
        for environment, process in racing.items():
            output, _ = process.communicate(timeout=60)
            assert process.returncode == 0, f"round {round_number}, {environment}: {output}"
        assert f"digest: {digests['staging']}" in remote_file(remote, STAGING)
        assert f"digest: {digests['production']}" in remote_file(remote, production)
    subjects = git("log", "--format=%s", "main", cwd=remote).splitlines()
    assert len(subjects) == 1 + 2 * 10  # the project, then every rollout of every round
