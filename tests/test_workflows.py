"""Workflows and actions pass actionlint and zizmor, and follow the hardening rules."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gitops_mlops import inputs

from .action_docs import refresh
from .baking import TEMPLATE, load_action_script

BIN = Path(sys.executable).parent
PINNED = re.compile(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
PUSHING_JOBS = {"staging", "production", "update", "publish"}  # jobs that push keep credentials


def lint(*command: str, cwd: Path = TEMPLATE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def workflows(project: Path) -> dict[str, dict]:
    folder = project / ".github" / "workflows"
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(folder.glob("*.yml"))}


def test_actionlint_accepts_generated_workflows(baked: Path) -> None:
    files = sorted(str(p) for p in (baked / ".github" / "workflows").glob("*.yml"))
    result = lint(str(BIN / "actionlint"), *files, cwd=baked)
    assert result.returncode == 0, result.stdout


def test_zizmor_finds_nothing_in_generated_workflows(baked: Path) -> None:
    result = lint(str(BIN / "zizmor"), "--offline", "--no-progress", ".", cwd=baked)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


def test_template_workflows_and_actions_pass_both_linters() -> None:
    workflow_files = sorted(str(p) for p in (TEMPLATE / ".github" / "workflows").glob("*.yml"))
    action_files = sorted(str(p) for p in (TEMPLATE / "actions").glob("*/action.yml"))
    assert len(action_files) == 5
    linted = lint(str(BIN / "actionlint"), *workflow_files)
    assert linted.returncode == 0, linted.stdout
    audited = lint(
        str(BIN / "zizmor"), "--offline", "--no-progress", *workflow_files, *action_files
    )
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert "No findings to report" in audited.stdout


def test_the_checks_flag_a_bad_workflow() -> None:
    bad = str(TEMPLATE / "tests" / "fixtures" / "bad-workflow.yml")
    linted = lint(str(BIN / "actionlint"), bad)
    assert linted.returncode != 0
    assert "potentially untrusted" in linted.stdout
    audited = lint(str(BIN / "zizmor"), "--offline", "--no-progress", "--no-config", bad)
    assert audited.returncode != 0
    assert "template-injection" in audited.stdout
    assert "unpinned-uses" in audited.stdout


def test_generated_workflows_are_hardened(baked: Path) -> None:
    for name, workflow in workflows(baked).items():
        assert workflow["permissions"] == {}, name
        assert "concurrency" in workflow, name
        assert "pull_request_target" not in workflow[True], name  # YAML reads `on` as True
        for job_name, job in workflow["jobs"].items():
            assert "permissions" in job, f"{name}:{job_name} has no permissions"
            for step in job.get("steps", []):
                assert "${{" not in step.get("run", ""), f"{name}:{job_name} expression in run"
                if step.get("uses", "").startswith("actions/checkout@"):
                    keeps = step["with"]["persist-credentials"]
                    assert keeps is (job_name in PUSHING_JOBS), f"{name}:{job_name}"


def test_own_actions_are_hash_pinned_when_actions_ref_is_a_commit(baked: Path) -> None:
    answers = json.loads((baked / ".cruft.json").read_text())["context"]["cookiecutter"]
    policies = yaml.safe_load((baked / ".github" / "zizmor.yml").read_text())["rules"]
    own = policies["unpinned-uses"]["config"]["policies"][f"{answers['actions_repository']}/*"]
    is_sha = re.fullmatch(r"[0-9a-f]{40}", answers["actions_ref"]) is not None
    assert own == ("hash-pin" if is_sha else "ref-pin")


def test_third_party_actions_are_pinned_by_sha(baked: Path) -> None:
    actions_repository = yaml.safe_load((baked / ".github" / "zizmor.yml").read_text())
    own = next(iter(actions_repository["rules"]["unpinned-uses"]["config"]["policies"]))
    texts = [p.read_text() for p in (baked / ".github" / "workflows").glob("*.yml")]
    texts += [p.read_text() for p in (TEMPLATE / "actions").glob("*/action.yml")]
    texts += [p.read_text() for p in (TEMPLATE / ".github" / "workflows").glob("*.yml")]
    uses = [line.strip().removeprefix("- ") for text in texts for line in text.splitlines()]
    uses = [line for line in uses if line.startswith("uses:") and "./" not in line]
    third_party = [line for line in uses if not line.startswith(f"uses: {own.removesuffix('/*')}")]
    assert third_party
    assert [line for line in third_party if not PINNED.search(line)] == []


def test_action_scripts_get_inputs_only_through_env() -> None:
    for path in (TEMPLATE / "actions").glob("*/action.yml"):
        action = yaml.safe_load(path.read_text())
        for step in action["runs"]["steps"]:
            if "run" in step:
                assert "${{" not in step["run"], path
                assert step["shell"] == "bash"
                assert step["run"].startswith("set -euo pipefail"), path


def test_every_action_is_documented() -> None:
    for path in (TEMPLATE / "actions").glob("*/action.yml"):
        readme = path.parent / "README.md"
        text = readme.read_text()
        for heading in ("## About", "## Usage", "## Inputs", "## Outputs"):
            assert heading in text, f"{path.parent.name}: {heading}"
        assert refresh(readme) == text, f"{readme}: run python -m tests.action_docs"


def action_inputs(path: Path) -> tuple[set[str], set[str], set[str]]:
    """(declared, passed to the script through env:, used by action.yml itself) input names."""
    action = yaml.safe_load(path.read_text())
    declared = set(action.get("inputs", {}))
    passed, used = set(), set()
    for step in action["runs"]["steps"]:
        for key, value in step.get("env", {}).items():
            if key.startswith("INPUT_"):
                assert value == f"${{{{ inputs.{key[6:].lower().replace('_', '-')} }}}}", key
                passed.add(key[6:].lower().replace("_", "-"))
        rest = {key: value for key, value in step.items() if key != "env"}
        used |= set(re.findall(r"inputs\.([a-z0-9-]+)", yaml.safe_dump(rest)))
    return declared, passed, used


@pytest.mark.parametrize(
    ("action", "script"),
    [
        ("build-container", "build_container"),
        ("pr-report", "pr_report"),
        ("rollout", "rollout"),
        ("setup-project", "setup_project"),
        ("validate-model", "validate_model"),
    ],
)
def test_inputs_are_declared_passed_and_read_alike(action: str, script: str) -> None:
    """What action.yml declares = what it passes to the script (or uses itself) = what the
    script reads; defaults live in action.yml only, so nothing can be read that is not passed."""
    declared, passed, used = action_inputs(TEMPLATE / "actions" / action / "action.yml")
    module = load_action_script(action, script)
    read = {inputs.input_name(field.name) for field in dataclasses.fields(module.Inputs)}
    assert read == passed
    assert declared == passed | used
    assert passed.isdisjoint(used - passed)
