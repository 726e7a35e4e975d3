"""GitOps rollout: write ``image@digest`` into an environment's overlay and commit it.

``push`` mode commits to the branch Argo CD watches (staging); ``pull-request`` mode pushes a
promotion branch and opens a pull request (production: a person approves the change in git).
With a kubeconfig, push mode then waits for the Deployment to run the new image, and reverts
the commit in git if it does not.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitops_mlops import inputs, workflow
from gitops_mlops.github import GitHub
from gitops_mlops.gitops import GitError, commit_paths, git, push_with_retry, revert
from gitops_mlops.overlay import OverlayError, set_image
from gitops_mlops.verify import classify_service, kubernetes_reader, poll, service_reader, wait

Apply = Callable[[], str | None]


@dataclass(frozen=True)
class Inputs:
    """This action's inputs (see action.yml)."""

    environment: str
    image: str
    digest: str
    model_version: str
    mode: str
    overlay_root: str
    container: str
    branch: str
    kubeconfig: str
    namespace: str
    deployment: str
    service: str
    model_name: str
    timeout_seconds: float
    poll_seconds: float
    github_token: str


def overlay_path(root: str, environment: str) -> Path:
    """The environment's kustomization.yaml, which must exist."""
    path = Path(root) / environment / "kustomization.yaml"
    if not path.is_file():
        workflow.fail(f"no overlay for environment {environment!r}: {path} does not exist")
    return path


def message(environment: str, image: str, digest: str, model: str) -> str:
    """Commit message naming the model version and the digest."""
    run = ""
    if os.environ.get("GITHUB_RUN_ID"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        repository, run_id = os.environ["GITHUB_REPOSITORY"], os.environ["GITHUB_RUN_ID"]
        run = f"\nRun: {server}/{repository}/actions/runs/{run_id}"
    return (
        f"Roll out model {model or 'unknown'} to {environment}\n\n"
        f"Image: {image}@{digest}\nModel: {model or 'unknown'}{run}\n"
    )


def applier(path: Path, container: str, image: str, digest: str, text: str) -> Apply:
    """The edit-and-commit step, re-runnable on top of a newer remote head."""

    def apply() -> str | None:
        path.write_text(
            set_image(path.read_text(encoding="utf-8"), container, image, digest), encoding="utf-8"
        )
        return commit_paths([path], text)

    return apply


def namespace_of(path: Path) -> str:
    """The overlay's ``namespace:``, where its Deployment lives."""
    found = re.search(r"^namespace:\s*(\S+)", path.read_text(encoding="utf-8"), re.M)
    if not found:
        workflow.fail(f"{path} sets no namespace: give the namespace input")
    return found.group(1)


def verify_or_revert(given: Inputs, sha: str, branch: str, path: Path) -> int:
    """Wait for the cluster; on failure push a revert commit and fail with the reason."""
    image, digest = given.image, given.digest
    kubeconfig = Path(tempfile.mkdtemp()) / "kubeconfig"
    kubeconfig.write_text(given.kubeconfig, encoding="utf-8")
    kubeconfig.chmod(0o600)
    namespace = given.namespace or namespace_of(path)
    started = time.monotonic()
    observation = wait(
        kubernetes_reader(kubeconfig, namespace, given.deployment),
        f"{image}@{digest}",
        given.timeout_seconds,
        given.poll_seconds,
    )
    if observation.state == "complete" and given.model_name:
        workflow.notice(f"Deployment rolled out: {observation.reason}")
        ask = service_reader(kubeconfig, namespace, given.service, given.model_name)
        observation = poll(
            lambda left: classify_service(ask(left), given.model_name, given.model_version),
            given.timeout_seconds - (time.monotonic() - started),
            given.poll_seconds,
        )
    workflow.set_output("verification", observation.state)
    if observation.state == "complete":
        workflow.notice(f"rollout verified: {observation.reason}")
        return 0
    reverted = revert(sha, branch)
    workflow.set_output("revert-commit", reverted or "")
    workflow.fail(
        f"rollout of {image}@{digest} failed ({observation.reason}); reverted in {reverted}"
    )


def propose(given: Inputs, apply: Apply, text: str) -> int:
    """Push the promotion branch and open (or reuse) its pull request; re-runs are idempotent.

    Where Actions may not open pull requests (GitHub's default for new repositories), the
    branch is still pushed and the step succeeds with the link to open it by hand.
    """
    environment, image, digest = given.environment, given.image, given.digest
    branch = f"promote/{environment}-{digest.removeprefix('sha256:')[:12]}"
    base = os.environ.get("GITHUB_REF_NAME", "main")
    git("checkout", "--quiet", "-B", branch)
    if apply() is None:
        workflow.notice(f"{environment} already runs {image}@{digest}")
        return 0
    force_push(branch)
    repository = os.environ["GITHUB_REPOSITORY"]
    github = GitHub(os.environ["GITHUB_API_URL"], repository, given.github_token)
    try:
        pull = github.open_pull_request(branch, base, text.splitlines()[0], text)
    except urllib.error.HTTPError as failure:
        reason = json.loads(failure.read() or b"{}").get("message", "")
        if failure.code != 403 or "not permitted to create" not in reason:
            raise
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        compare = f"{server}/{repository}/compare/{base}...{branch}?expand=1"
        advice = (
            f"Pushed {branch}, but this repository does not let GitHub Actions open pull "
            f"requests ({reason}). Open it here: {compare} . To let the workflow open it: "
            "Settings > Actions > General > Workflow permissions > Allow GitHub Actions to "
            "create and approve pull requests."
        )
        workflow.warning(advice)
        workflow.append_summary(f"> [!WARNING]\n> {advice}")
        workflow.set_output("pull-request-url", "")
        return 0
    workflow.set_output("pull-request-url", pull["html_url"])
    workflow.notice(f"promotion pull request: {pull['html_url']}")
    return 0


def force_push(branch: str) -> None:
    """Replace the promotion branch, expecting exactly what the remote holds now.

    The lease names the remote's current commit (or none), so a re-run replaces the branch
    its first run pushed instead of failing with "stale info", and nothing pushed to the
    branch in between is overwritten unseen.
    """
    listed = git("ls-remote", "origin", f"refs/heads/{branch}").stdout.split()
    lease = f"--force-with-lease=refs/heads/{branch}:{listed[0] if listed else ''}"
    git("push", "--quiet", lease, "origin", f"HEAD:refs/heads/{branch}")


def main() -> int:
    """Roll out; outputs ``commit``, ``pull-request-url``, ``verification``, ``revert-commit``."""
    given = inputs.read(Inputs)
    environment, image, digest = given.environment, given.image, given.digest
    path = overlay_path(given.overlay_root, environment)
    text = message(environment, image, digest, given.model_version)
    apply = applier(path, given.container, image, digest, text)

    if given.mode == "pull-request":
        return propose(given, apply, text)

    branch = given.branch or os.environ.get("GITHUB_REF_NAME", "main")
    sha = push_with_retry(branch, apply)
    if sha is None:
        workflow.notice(f"{environment} already runs {image}@{digest}: nothing to commit")
        return 0
    workflow.set_output("commit", sha)
    workflow.notice(f"{environment} now points at {image}@{digest} ({sha[:12]})")
    if not given.kubeconfig:
        workflow.set_output("verification", "skipped")
        return 0
    return verify_or_revert(given, sha, branch, path)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (GitError, OverlayError) as error:  # the reason, not a traceback
        workflow.fail(str(error))
