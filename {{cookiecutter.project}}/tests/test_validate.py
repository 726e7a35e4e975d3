"""The gates fail closed and the report says why."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from {{ cookiecutter.package }}.config import (
    FairnessBound,
    ParityBound,
    ValidateParams,
)
from {{ cookiecutter.package }}.report import render
from {{ cookiecutter.package }}.validate import (
    BaselineError,
    decide,
    load_baseline,
)

METRICS = {"accuracy": 0.91, "roc_auc": 0.97}
FAIRNESS = {"gender": {"demographic_parity_difference": 0.02}}
PARITY = {"max_abs_diff": 1e-7, "label_agreement": 1.0, "rows": 750}


def params(**thresholds: float) -> ValidateParams:
    return ValidateParams(
        thresholds=thresholds,
        max_regression=0.01,
        fairness=FairnessBound(metric="demographic_parity_difference", max=0.1),
        parity=ParityBound(max_abs_diff=1e-4, min_label_agreement=1.0),
    )


def statuses(verdict) -> dict[str, str]:
    return {gate.name: gate.status for gate in verdict.gates}


def test_good_model_without_baseline_passes_and_says_so() -> None:
    verdict = decide(METRICS, FAIRNESS, PARITY, params(accuracy=0.85))
    assert verdict.passed
    assert statuses(verdict) == {
        "thresholds": "passed",
        "baseline": "skipped",
        "fairness": "passed",
        "onnx_parity": "passed",
    }
    assert "none (absolute thresholds only)" in render(verdict)


def test_no_thresholds_fails_closed() -> None:
    verdict = decide(METRICS, FAIRNESS, PARITY, params())
    assert not verdict.passed
    assert "no thresholds configured" in verdict.gates[0].detail


def test_threshold_on_a_missing_metric_fails() -> None:
    verdict = decide(METRICS, FAIRNESS, PARITY, params(recall=0.5))
    assert statuses(verdict)["thresholds"] == "failed"
    assert "recall" in verdict.gates[0].detail


def test_low_accuracy_fails_threshold() -> None:
    verdict = decide({"accuracy": 0.55}, FAIRNESS, PARITY, params(accuracy=0.85))
    assert not verdict.passed
    assert statuses(verdict)["thresholds"] == "failed"


@pytest.mark.parametrize(("baseline", "status"), [(0.915, "passed"), (0.93, "failed")])
def test_regression_against_baseline(baseline: float, status: str) -> None:
    verdict = decide(
        METRICS, FAIRNESS, PARITY, params(accuracy=0.85), {"accuracy": baseline}, "file"
    )
    assert statuses(verdict)["baseline"] == status
    assert verdict.passed is (status == "passed")
    assert f"{0.91 - baseline:+.4f}" in render(verdict)


def test_unfair_model_fails() -> None:
    unfair = {"gender": {"demographic_parity_difference": 0.25}}
    verdict = decide(METRICS, unfair, PARITY, params(accuracy=0.85))
    assert statuses(verdict)["fairness"] == "failed"
    assert "❌ `gender.demographic_parity_difference` 0.25 <= 0.1" in render(verdict)


def test_missing_fairness_metrics_fail() -> None:
    assert statuses(decide(METRICS, {}, PARITY, params(accuracy=0.85)))["fairness"] == "failed"


def test_label_disagreement_fails_parity() -> None:
    verdict = decide(METRICS, FAIRNESS, {**PARITY, "label_agreement": 0.999}, params(accuracy=0.85))
    assert statuses(verdict)["onnx_parity"] == "failed"


def test_baseline_from_git_ref(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    Path("metrics").mkdir()
    Path("metrics/metrics.json").write_text(json.dumps({"accuracy": 0.9}))
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "baseline"], check=True)
    assert load_baseline(None, "HEAD") == ({"accuracy": 0.9}, "git HEAD")
    assert load_baseline(None, "no-such-ref") == (None, None)


def test_explicit_baseline_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="does not exist"):
        load_baseline(tmp_path / "missing.json", None)


def test_report_charts_baseline_and_current_metrics() -> None:
    baseline = {"accuracy": 0.9}
    verdict = decide(METRICS, FAIRNESS, PARITY, params(accuracy=0.85), baseline, "git main")
    report = render(verdict)
    assert "```mermaid\nxychart-beta" in report
    assert "x-axis [accuracy, roc_auc]" in report
    assert "  bar [0.9000, 0.0000]\n  bar [0.9100, 0.9700]" in report
    assert 'title "Test metrics (baseline then current)"' in report
