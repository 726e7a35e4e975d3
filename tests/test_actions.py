"""The composite actions' scripts, run for real against git, DVC and a recorded GitHub API."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gitops_mlops import github as github_api

from .baking import TEMPLATE, fresh, install, load_action_script
from .github_api import FakeGitHub, Server

ACTIONS = TEMPLATE / "actions"
MARKER = "gitops-mlops-report"


pr_report = load_action_script("pr-report", "pr_report")
validate_model = load_action_script("validate-model", "validate_model")
build_container = load_action_script("build-container", "build_container")


@pytest.fixture
def runner_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, as a runner provides them."""
    files = {"output": tmp_path / "output", "summary": tmp_path / "summary.md"}
    for path in files.values():
        path.touch()
    monkeypatch.setenv("GITHUB_OUTPUT", str(files["output"]))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(files["summary"]))
    return files


def outputs(files: dict[str, Path]) -> dict[str, str]:
    lines = files["output"].read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture
def pull_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runner_files) -> Path:
    """A pull_request event, a report file, and the inputs pr-report reads."""
    event = {
        "pull_request": {"number": 7, "head": {"repo": {"full_name": "example-org/my-ml-project"}}}
    }
    (tmp_path / "event.json").write_text(json.dumps(event))
    (tmp_path / "report.md").write_text("## ✅ Model passed all gates\n")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(tmp_path / "event.json"))
    monkeypatch.setenv("GITHUB_REPOSITORY", "example-org/my-ml-project")
    monkeypatch.setenv("INPUT_REPORT", str(tmp_path / "report.md"))
    monkeypatch.setenv("INPUT_GITHUB_TOKEN", "ghs_recorded")
    monkeypatch.setenv("INPUT_MARKER", MARKER)
    return tmp_path


def test_pr_report_creates_then_updates_one_comment(
    pull_request: Path,
    runner_files,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Recorded API: the first run creates the comment, the second updates the same one."""
    github = FakeGitHub()
    github.add_comment("Looks good to me.", template="other_comment")
    with Server(github) as server:
        monkeypatch.setenv("GITHUB_API_URL", server.url)
        assert pr_report.main() == 0
        (pull_request / "report.md").write_text("## ❌ Model rejected\n")
        assert pr_report.main() == 0

    calls = [(r.method, r.path.split("?")[0]) for r in github.requests]
    repo = "/repos/example-org/my-ml-project"
    created_id = github.comments[1]["id"]
    assert calls == [
        ("GET", "/user"),
        ("GET", f"{repo}/issues/7/comments"),
        ("POST", f"{repo}/issues/7/comments"),
        ("GET", "/user"),
        ("GET", f"{repo}/issues/7/comments"),
        ("PATCH", f"{repo}/issues/comments/{created_id}"),
    ]
    assert github.requests[2].body == {"body": f"<!-- {MARKER} -->\n## ✅ Model passed all gates\n"}
    assert github.requests[5].body == {"body": f"<!-- {MARKER} -->\n## ❌ Model rejected\n"}
    assert all(r.authorization == "Bearer ghs_recorded" for r in github.requests)
    assert len(github.comments) == 2
    assert outputs(runner_files)["comment-id"] == str(created_id)


def test_pr_report_finds_its_comment_beyond_the_first_page(
    pull_request: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    github = FakeGitHub()
    for index in range(github_api.PER_PAGE):
        github.add_comment(f"chatter {index}", template="other_comment")
    sticky = github.add_comment(f"<!-- {MARKER} -->\nold report")
    with Server(github) as server:
        monkeypatch.setenv("GITHUB_API_URL", server.url)
        assert pr_report.main() == 0
    assert [r.method for r in github.requests] == ["GET", "GET", "GET", "PATCH"]
    assert "page=2" in github.requests[2].path
    assert sticky["body"].endswith("## ✅ Model passed all gates\n")


def test_pr_report_from_a_fork_stays_in_the_summary(
    pull_request: Path,
    runner_files,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:
    event = {"pull_request": {"number": 7, "head": {"repo": {"full_name": "someone/fork"}}}}
    (pull_request / "event.json").write_text(json.dumps(event))
    github = FakeGitHub()
    with Server(github) as server:
        monkeypatch.setenv("GITHUB_API_URL", server.url)
        assert pr_report.main() == 0
    assert github.requests == []
    assert "forks get a read-only token" in runner_files["summary"].read_text()
    assert "::notice::Report not posted" in capsys.readouterr().out
    assert outputs(runner_files)["posted"] == "false"


def test_pr_report_degrades_when_the_token_may_not_write(
    pull_request: Path,
    runner_files,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    github = FakeGitHub(forbid_writes=True)
    with Server(github) as server:
        monkeypatch.setenv("GITHUB_API_URL", server.url)
        assert pr_report.main() == 0
    assert [r.method for r in github.requests] == ["GET", "GET", "POST"]
    assert "HTTP 403" in runner_files["summary"].read_text()


@pytest.mark.parametrize("token_user", [None, "ml-release-bot"], ids=["github-token", "pat"])
def test_pr_report_never_takes_over_a_comment_someone_else_wrote(
    pull_request: Path, monkeypatch: pytest.MonkeyPatch, token_user: str | None
) -> None:
    """A drive-by comment that quotes the marker stays as it is; the report gets its own."""
    github = FakeGitHub(token_user=token_user)
    drive_by = github.add_comment(f"<!-- {MARKER} -->\nnot the report", author="someone")
    with Server(github) as server:
        monkeypatch.setenv("GITHUB_API_URL", server.url)
        assert pr_report.main() == 0
        assert pr_report.main() == 0
    assert drive_by["body"] == f"<!-- {MARKER} -->\nnot the report"
    assert [r.method for r in github.requests if r.method != "GET"] == ["POST", "PATCH"]
    (own,) = [c for c in github.comments if c is not drive_by]
    assert own["user"]["login"] == (token_user or "github-actions[bot]")


def test_baseline_ref_resolves_to_a_commit_preferring_the_remote_branch(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "one"], check=True)
    subprocess.run([*git, "update-ref", "refs/remotes/origin/main", "HEAD"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "two"], check=True)
    head, remote = (
        subprocess.run(["git", "rev-parse", ref], capture_output=True, text=True).stdout.strip()
        for ref in ("HEAD", "origin/main")
    )
    assert head != remote
    assert validate_model.resolve_baseline("main") == remote
    assert validate_model.resolve_baseline("HEAD") == head
    assert validate_model.resolve_baseline("0" * 40) is None
    assert validate_model.resolve_baseline("--output=/tmp/x") is None
    assert validate_model.resolve_baseline("") is None


@pytest.mark.e2e
def test_setup_project_pulls_from_the_given_dvc_remote(baked_default: Path, tmp_path: Path) -> None:
    """Real DVC: push the raw data to a folder remote, lose it, get it back through the action."""
    project = install(fresh(baked_default, tmp_path / "out"), tmp_path / "venv")
    project.dvc("repro", "ingest")
    remote = tmp_path / "remote"
    project.dvc("push", "-r", "local")  # the embedded default remote, a sibling folder
    shutil.move(str(tmp_path / "out" / "my-ml-project-dvc-storage"), remote)
    shutil.rmtree(project.root / ".dvc" / "cache")
    (project.root / "data" / "raw" / "dataset.csv").unlink()

    summary, output = tmp_path / "summary.md", tmp_path / "output"
    env = {
        **project.env,
        "VENV": str(tmp_path / "venv"),
        "INPUT_DVC_REMOTE_URL": str(remote),
        "PYTHONPATH": str(ACTIONS),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    script = ACTIONS / "setup-project" / "setup_project.py"
    result = subprocess.run(
        [sys.executable, str(script)], cwd=project.root, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dvc-pulled=true" in output.read_text()
    assert (project.root / "data" / "raw" / "dataset.csv").read_bytes() == (
        project.root / "data" / "demo" / "loans.csv"
    ).read_bytes()
    assert "remote = ci" in (project.root / ".dvc" / "config.local").read_text()
    assert re.fullmatch(r"\nInstalled the project in \d+ s\.\n", summary.read_text())


@pytest.mark.parametrize(
    ("image", "recorded"),
    [
        ("docker.io/example-org/model", "example-org/model"),
        ("index.docker.io/example-org/model", "example-org/model"),
        ("docker.io/library/model", "model"),
        ("ghcr.io/example-org/model", "ghcr.io/example-org/model"),
        ("localhost:5000/team/model", "localhost:5000/team/model"),
    ],
)
def test_the_pushed_digest_is_found_under_the_name_docker_records(
    image: str, recorded: str
) -> None:
    """Docker lists Docker Hub images in RepoDigests without host or library/ (issue: the
    digest lookup failed for container_registry=docker.io)."""
    assert build_container.short_name(image) == build_container.short_name(recorded)
    assert build_container.short_name(image) == recorded
    assert build_container.short_name("quay.io/example-org/model") != recorded
