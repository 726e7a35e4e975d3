"""The reinforcement-learning project end to end: RLlib's PPO on CartPole through DVC and the gates.

One reproduced project (``reproduced_rllib``) serves the read-only tests; the tests that
change parameters work on a fresh copy. Its serving image is built in test_container.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .baking import Project, edit_params, failing_repro, fresh, install
from .test_pipeline import (
    CURVES,
    PASSED_WITHOUT_GROUPS,
    forced_rerun_elsewhere_writes_the_same_lock,
    gate_status,
    params_of,
    ran,
    verdict,
)

pytestmark = pytest.mark.e2e

STAGES = ["train", "evaluate", "export", "validate"]
GENERATED_TESTS = 22  # tests/test_agent.py 17 + tests/test_dvc_dependencies.py 5


def test_ppo_reaches_the_demo_threshold_and_a_forced_rerun_writes_the_same_lock(
    reproduced_rllib: Project, tmp_path: Path
) -> None:
    project = reproduced_rllib
    metrics = json.loads((project.root / "metrics/metrics.json").read_text())
    threshold = params_of(project)["validate"]["thresholds"]["mean_return"]["min"]
    assert metrics["episodes"] == 10
    assert metrics["mean_return"] >= threshold
    assert gate_status(project) == PASSED_WITHOUT_GROUPS
    parity = json.loads((project.root / "metrics/parity.json").read_text())
    assert parity["label_agreement"] == 1.0
    assert parity["max_abs_diff"] <= 1e-4
    # Every step of the 10 episodes is a recorded observation (CartPole pays 1 per step).
    recorded = (project.root / "data/prepared/test.csv").read_text().splitlines()
    assert len(recorded) - 1 == parity["rows"] == round(metrics["mean_return"] * 10)
    assert "Data and pipelines are up to date." in project.dvc("repro").stdout

    forced_rerun_elsewhere_writes_the_same_lock(project, tmp_path, STAGES)


def test_training_curves_reach_mlflow_and_tensorboard_per_iteration(
    reproduced_rllib: Project,
) -> None:
    project = reproduced_rllib
    logged = json.loads(project.run(project.python, "-c", CURVES).stdout)
    tags = {"episode_return_mean", "episode_len_mean", "policy_loss", "entropy"}
    assert set(logged["tensorboard"]) == tags
    iterations = params_of(project)["train"]["iterations"]
    for tag, points in logged["tensorboard"].items():
        assert [step for step, _ in points] == list(range(1, iterations + 1))
        values = [value for _, value in logged["mlflow"][tag]]
        assert values == pytest.approx([value for _, value in points], rel=1e-6), tag


def test_the_generated_tests_and_lint_pass(reproduced_rllib: Project, tmp_path: Path) -> None:
    project = install(fresh(reproduced_rllib.root, tmp_path / "out"), tmp_path / "venv")
    project.run("make", "lint")
    assert project.assert_own_tests_pass() == GENERATED_TESTS


def test_a_policy_trained_for_one_iteration_is_rejected_by_the_return_gate(
    reproduced_rllib: Project, tmp_path: Path
) -> None:
    project = install(fresh(reproduced_rllib.root, tmp_path / "out"), tmp_path / "venv")
    edit_params(project.root, "train", iterations=1)
    result = failing_repro(project)
    assert ran(result.stdout) == STAGES
    threshold = params_of(project)["validate"]["thresholds"]["mean_return"]["min"]
    assert "model rejected by gate(s): thresholds (mean_return)" in result.stdout + result.stderr
    assert gate_status(project) == {**PASSED_WITHOUT_GROUPS, "thresholds": "failed"}
    [check] = next(g for g in verdict(project)["gates"] if g["name"] == "thresholds")["checks"]
    assert check["name"] == "mean_return"
    assert check["value"] < threshold


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        (
            "environment",
            {"id": "NoSuchWorld-v0"},
            "ERROR: params.yaml: environment.id: 'NoSuchWorld-v0': Environment `NoSuchWorld` "
            "doesn't exist.",
        ),
        (
            "train",
            {"iterations": 0},
            "ERROR: params.yaml: train: iterations: Input should be greater than 0",
        ),
    ],
)
def test_bad_params_stop_train_with_one_line_naming_the_param(
    reproduced_rllib: Project, tmp_path: Path, section: str, values: dict, message: str
) -> None:
    project = install(fresh(reproduced_rllib.root, tmp_path / "out"), tmp_path / "venv")
    edit_params(project.root, section, **values)
    result = project.cli("train", check=False)
    assert result.returncode == 1
    assert re.sub(r"\x1b\[[0-9;]*m", "", result.stderr).strip() == message
