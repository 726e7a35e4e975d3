"""The gates fail closed, compare like with like, and the report and verdict say why."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package }} import baseline
from {{ cookiecutter.package }}.config import (
    Bound,
    FairnessBound,
    ParityBound,
    Paths,
    PrivacyBudget,
    PrivacyParams,
    ValidateParams,
)
from {{ cookiecutter.package }}.gates import decide
from {{ cookiecutter.package }}.report import render
from {{ cookiecutter.package }}.schema import Schema
from {{ cookiecutter.package }}.stages.validate import scorer
from {{ cookiecutter.package }}.verdict import SCHEMA_VERSION, Baseline, Verdict

METRICS = {"accuracy": 0.91, "roc_auc": 0.97, "log_loss": 0.25}
FAIRNESS = {"group": {"demographic_parity_difference": 0.02}}
PARITY = {"max_abs_diff": 1e-7, "label_agreement": 1.0, "rows": 750}
NONE = Baseline("none", note="no baseline ref given")


def params(fairness: bool = True, **thresholds: dict[str, float]) -> ValidateParams:
    return ValidateParams(
        thresholds={name: Bound(**bound) for name, bound in thresholds.items()},
        max_regression=0.01,
        fairness=FairnessBound(metric="demographic_parity_difference", max=0.1)
        if fairness
        else None,
        parity=ParityBound(max_abs_diff=1e-4, min_label_agreement=1.0),
    )


def statuses(verdict: Verdict) -> dict[str, str]:
    return {gate.name: gate.status for gate in verdict.gates}


def against(accuracy: float) -> Baseline:
    return Baseline("model", "main", "0" * 40, {"accuracy": accuracy, "log_loss": 0.25}, "ab")


def test_good_model_without_baseline_passes_and_says_so() -> None:
    verdict = decide(METRICS, FAIRNESS, PARITY, params(accuracy={"min": 0.85}), NONE)
    assert verdict.passed
    assert statuses(verdict) == {
        "thresholds": "passed",
        "baseline": "skipped",
        "fairness": "passed",
        "onnx_parity": "passed",
        "encrypted": "not_applicable",
        "privacy": "not_applicable",
    }
    assert "Baseline: no baseline ref given." in render(verdict)


def test_no_thresholds_fails_closed() -> None:
    verdict = decide(METRICS, FAIRNESS, PARITY, params(), NONE)
    assert not verdict.passed
    assert "no thresholds configured" in verdict.gates[0].detail


def test_threshold_on_a_missing_metric_fails() -> None:
    verdict = decide(METRICS, FAIRNESS, PARITY, params(recall={"min": 0.5}), NONE)
    assert statuses(verdict)["thresholds"] == "failed"
    assert "recall" in verdict.gates[0].detail


def test_a_threshold_needs_exactly_one_direction() -> None:
    with pytest.raises(ValueError, match="exactly one of min or max"):
        Bound(min=0.1, max=0.2)
    with pytest.raises(ValueError, match="exactly one of min or max"):
        Bound()


@pytest.mark.parametrize(
    ("bound", "passed"),
    [({"min": 0.85}, True), ({"min": 0.95}, False)],
)
def test_minimum_thresholds(bound: dict[str, float], passed: bool) -> None:
    verdict = decide(METRICS, FAIRNESS, PARITY, params(accuracy=bound), NONE)
    assert verdict.passed is passed


@pytest.mark.parametrize(("bound", "passed"), [({"max": 0.3}, True), ({"max": 0.2}, False)])
def test_maximum_thresholds_for_losses(bound: dict[str, float], passed: bool) -> None:
    verdict = decide(METRICS, FAIRNESS, PARITY, params(log_loss=bound), NONE)
    assert verdict.passed is passed
    assert verdict.gates[0].checks[0].op == "<="


@pytest.mark.parametrize(("baseline_accuracy", "status"), [(0.915, "passed"), (0.93, "failed")])
def test_regression_of_a_score_against_the_baseline(baseline_accuracy: float, status: str) -> None:
    verdict = decide(
        METRICS, FAIRNESS, PARITY, params(accuracy={"min": 0.85}), against(baseline_accuracy)
    )
    assert statuses(verdict)["baseline"] == status
    assert verdict.passed is (status == "passed")
    assert f"{0.91 - baseline_accuracy:+.4f}" in render(verdict)


@pytest.mark.parametrize(("loss", "status"), [(0.255, "passed"), (0.27, "failed")])
def test_regression_of_a_loss_is_a_rise(loss: float, status: str) -> None:
    verdict = decide(
        {**METRICS, "log_loss": loss},
        FAIRNESS,
        PARITY,
        params(log_loss={"max": 0.5}),
        against(0.9),
    )
    assert statuses(verdict)["baseline"] == status


def test_unfair_model_fails() -> None:
    unfair = {"group": {"demographic_parity_difference": 0.25}}
    verdict = decide(METRICS, unfair, PARITY, params(accuracy={"min": 0.85}), NONE)
    assert statuses(verdict)["fairness"] == "failed"
    assert "❌ `group.demographic_parity_difference` 0.25 <= 0.1" in render(verdict)


def test_missing_fairness_metrics_fail() -> None:
    verdict = decide(METRICS, {}, PARITY, params(accuracy={"min": 0.85}), NONE)
    assert statuses(verdict)["fairness"] == "failed"


def test_fairness_switched_off_is_not_applicable_and_says_so() -> None:
    verdict = decide(METRICS, {}, PARITY, params(fairness=False, accuracy={"min": 0.85}), NONE)
    assert verdict.passed
    assert statuses(verdict)["fairness"] == "not_applicable"
    assert "| fairness | ➖ not applicable | switched off" in render(verdict)  # noqa: RUF001


SPENT = {"statistics": {"epsilon": 0.5, "delta": 0.0}}


def private(budget: PrivacyBudget | None, ledger: dict[str, dict[str, float]]) -> Verdict:
    privacy = PrivacyParams(enabled=True, budget=budget)
    bounds = params(accuracy={"min": 0.85})
    return decide(METRICS, FAIRNESS, PARITY, bounds, NONE, privacy=privacy, ledger=ledger)


def test_privacy_on_without_a_budget_fails_closed() -> None:
    verdict = private(None, SPENT)
    assert not verdict.passed
    gate = verdict.gates[-1]
    assert (gate.name, gate.status) == ("privacy", "failed")
    assert gate.detail == (
        "privacy is on and params.yaml declares no budget (privacy.budget: {epsilon: ...})"
    )


@pytest.mark.parametrize(
    ("budget", "failing"),
    [
        (PrivacyBudget(epsilon=0.4, delta=1e-5), ["epsilon"]),
        (PrivacyBudget(epsilon=1.0), ["delta"]),  # a delta spent against a pure-DP budget
        (PrivacyBudget(epsilon=1.0, delta=1e-5), []),
    ],
)
def test_the_privacy_gate_adds_up_the_ledger_against_the_budget(
    budget: PrivacyBudget, failing: list[str]
) -> None:
    ledger = {**SPENT, "training": {"epsilon": 0.25, "delta": 1e-6}}
    verdict = private(budget, ledger)
    gate = verdict.gates[-1]
    assert [check.name for check in gate.checks if not check.passed] == failing
    assert [check.value for check in gate.checks] == [0.75, 1e-6]
    assert verdict.passed == (not failing)
    assert gate.detail == "(ε, δ) spent on the training data: statistics ε=0.5, training ε=0.25"


ENCRYPTED = {"enabled": True, "applicable": True, "rows": 750}


@pytest.mark.parametrize(
    ("measured", "status", "detail"),
    [
        ({"enabled": False}, "not_applicable", "switched off in params.yaml (encryption.enabled)"),
        (
            {"enabled": True, "applicable": False, "reason": "the model is not linear"},
            "not_applicable",
            "the model is not linear",
        ),
        ({**ENCRYPTED, "max_abs_logit_error": 0.02, "label_agreement": 1.0}, "failed", None),
        ({**ENCRYPTED, "max_abs_logit_error": 0.001, "label_agreement": 0.999}, "failed", None),
        ({**ENCRYPTED, "max_abs_logit_error": 0.001, "label_agreement": 1.0}, "passed", None),
    ],
    ids=["off", "not linear", "logit error", "labels", "within"],
)
def test_the_encrypted_endpoint_ships_only_when_it_agrees_with_the_plaintext_model(
    measured: dict[str, object], status: str, detail: str | None
) -> None:
    verdict = decide(
        METRICS, FAIRNESS, PARITY, params(accuracy={"min": 0.85}), NONE, encrypted=measured
    )
    gate = next(gate for gate in verdict.gates if gate.name == "encrypted")
    assert (gate.status, verdict.passed) == (status, status != "failed")
    assert gate.detail == (detail or "CKKS-encrypted vs plaintext predictions on 750 test rows")


def test_label_disagreement_fails_parity() -> None:
    verdict = decide(
        METRICS,
        FAIRNESS,
        {**PARITY, "label_agreement": 0.999},
        params(accuracy={"min": 0.85}),
        NONE,
    )
    assert statuses(verdict)["onnx_parity"] == "failed"


def test_verdict_round_trips_and_refuses_other_versions() -> None:
    verdict = decide(
        METRICS, FAIRNESS, PARITY, params(accuracy={"min": 0.85}), against(0.9), "f" * 64, "ab"
    )
    data = json.loads(json.dumps(verdict.to_json()))
    assert data["schema_version"] == SCHEMA_VERSION
    assert Verdict.from_json(data) == verdict
    with pytest.raises(ValueError, match="schema version 99"):
        Verdict.from_json({**data, "schema_version": 99})


def test_report_charts_only_metrics_both_sides_have() -> None:
    verdict = decide(METRICS, FAIRNESS, PARITY, params(accuracy={"min": 0.85}), against(0.9))
    report = render(verdict)
    assert "```mermaid\nxychart-beta" in report
    assert "x-axis [accuracy, log_loss]" in report
    assert "  bar [0.9000, 0.2500]\n  bar [0.9100, 0.2500]" in report
    assert 'title "Test metrics (baseline then current)"' in report


def git(root: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repository(tmp_path: Path, paths: Paths) -> Paths:
    """A git repository holding committed metrics (no DVC cache: the model cannot be had)."""
    here = Paths().at(tmp_path)
    git(tmp_path, "init", "-q")
    here.metrics.parent.mkdir(parents=True)
    shutil.copy(paths.metrics, here.metrics)
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "baseline")
    return here


def test_unresolvable_ref_means_no_baseline(repository: Paths) -> None:
    found = baseline.fetch("no-such-ref", repository)
    assert found.source == "none"
    assert "'no-such-ref' names no commit" in found.note


def test_without_the_model_the_committed_metrics_are_the_baseline(
    repository: Paths, schema: Schema, test_split: tuple[pd.DataFrame, pd.Series]
) -> None:
    found = baseline.fetch("HEAD", repository)
    assert found.source == "metrics"
    assert "neither the DVC cache nor the remote" in found.note
    features, target = test_split
    loaded = baseline.load(repository, scorer(schema, features, target.to_numpy()), "current-split")
    assert loaded.metrics == json.loads(repository.metrics.read_text())
    assert "not this run's current-split" in loaded.note


def test_a_baseline_model_is_scored_on_this_runs_test_split(
    paths: Paths, schema: Schema, test_split: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    here = Paths().at(tmp_path)
    shutil.copytree(paths.bundle, here.baseline / baseline.BUNDLE)
    record = Baseline("model", "main", "0" * 40, note="the model of main")
    (here.baseline / baseline.RECORD).write_text(json.dumps(record.__dict__))
    features, target = test_split
    loaded = baseline.load(here, scorer(schema, features, target.to_numpy()), "split-md5")
    assert loaded.source == "model"
    assert loaded.test_split_md5 == "split-md5"
    native = json.loads(paths.metrics.read_text())  # the same model on the same rows
    assert loaded.metrics == pytest.approx(native, abs=1e-5)
