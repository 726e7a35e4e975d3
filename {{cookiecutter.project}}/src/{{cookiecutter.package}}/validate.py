"""The ``validate`` stage: the gates a model must pass before it ships. They fail closed.

Gates: absolute thresholds, no regression against a baseline, a fairness bound per sensitive
feature, and ONNX parity. The verdict is JSON for machines and Markdown for people.
"""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .config import Paths, ValidateParams
from .files import read_json

log = logging.getLogger(__name__)

Status = Literal["passed", "failed", "skipped"]


class BaselineError(RuntimeError):
    """A baseline was asked for but cannot be read."""


@dataclass(frozen=True)
class Check:
    """One comparison: ``value op bound``."""

    name: str
    value: float | None
    op: Literal[">=", "<="]
    bound: float
    passed: bool


@dataclass(frozen=True)
class Gate:
    """A named group of checks with a one-line explanation."""

    name: str
    status: Status
    detail: str
    checks: list[Check] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    """Everything the report needs: gates, current metrics and the baseline used."""

    passed: bool
    gates: list[Gate]
    metrics: dict[str, float]
    baseline: dict[str, float] | None
    baseline_source: str | None

    def to_json(self) -> dict[str, Any]:
        """Plain-data form for ``reports/verdict.json``."""
        return asdict(self)


def _check(name: str, value: float | None, op: Literal[">=", "<="], bound: float) -> Check:
    passed = value is not None and (value >= bound if op == ">=" else value <= bound)
    return Check(name=name, value=value, op=op, bound=bound, passed=passed)


def _gate(name: str, checks: list[Check], detail: str) -> Gate:
    status: Status = "passed" if checks and all(check.passed for check in checks) else "failed"
    return Gate(name=name, status=status, detail=detail, checks=checks)


def threshold_gate(metrics: dict[str, float], thresholds: dict[str, float]) -> Gate:
    """Every configured metric meets its minimum; no thresholds at all is a failure."""
    if not thresholds:
        return Gate(
            "thresholds", "failed", "no thresholds configured in params.yaml (validate.thresholds)"
        )
    checks = [_check(name, metrics.get(name), ">=", bound) for name, bound in thresholds.items()]
    missing = [check.name for check in checks if check.value is None]
    detail = (
        f"metrics missing from {Paths.metrics}: {', '.join(missing)}"
        if missing
        else "minimum per metric"
    )
    return _gate("thresholds", checks, detail)


def baseline_gate(
    metrics: dict[str, float], baseline: dict[str, float] | None, names: list[str], tolerance: float
) -> Gate:
    """No thresholded metric drops more than ``tolerance`` below the baseline."""
    if baseline is None:
        return Gate("baseline", "skipped", "no baseline available: absolute thresholds only")
    checks = [
        _check(name, metrics.get(name), ">=", round(baseline[name] - tolerance, 6))
        for name in names
        if name in baseline
    ]
    if not checks:
        return Gate("baseline", "skipped", "the baseline shares no thresholded metric")
    return _gate("baseline", checks, f"at most {tolerance} below the baseline")


def fairness_gate(fairness: dict[str, dict[str, Any]], metric: str, bound: float) -> Gate:
    """The chosen Fairlearn difference stays below ``bound`` for each sensitive feature."""
    if not fairness:
        return Gate(
            "fairness",
            "failed",
            "no fairness metrics: declare sensitive features in data/schema.yaml",
        )
    checks = [
        _check(f"{feature}.{metric}", values.get(metric), "<=", bound)
        for feature, values in fairness.items()
    ]
    return _gate("fairness", checks, f"{metric} between groups")


def parity_gate(parity: dict[str, float], max_abs_diff: float, min_agreement: float) -> Gate:
    """The ONNX model reproduces the native model's probabilities and labels."""
    checks = [
        _check("max_abs_diff", parity.get("max_abs_diff"), "<=", max_abs_diff),
        _check("label_agreement", parity.get("label_agreement"), ">=", min_agreement),
    ]
    return _gate(
        "onnx_parity", checks, f"ONNX vs native model on {parity.get('rows', '?')} test rows"
    )


def decide(
    metrics: dict[str, float],
    fairness: dict[str, dict[str, Any]],
    parity: dict[str, float],
    params: ValidateParams,
    baseline: dict[str, float] | None = None,
    baseline_source: str | None = None,
) -> Verdict:
    """Apply every gate; the model passes only if none failed."""
    gates = [
        threshold_gate(metrics, params.thresholds),
        baseline_gate(metrics, baseline, list(params.thresholds), params.max_regression),
        fairness_gate(fairness, params.fairness.metric, params.fairness.max),
        parity_gate(parity, params.parity.max_abs_diff, params.parity.min_label_agreement),
    ]
    return Verdict(
        passed=all(gate.status != "failed" for gate in gates),
        gates=gates,
        metrics=metrics,
        baseline=baseline,
        baseline_source=baseline_source,
    )


def load_baseline(file: Path | None, ref: str | None) -> tuple[dict[str, float] | None, str | None]:
    """Read baseline metrics from a file, or from ``metrics/metrics.json`` at a git ref.

    A ref that does not hold the metrics file (first commit, new branch) means no baseline;
    an unreadable file given explicitly is an error.
    """
    if file is not None:
        if not file.is_file():
            raise BaselineError(f"baseline file {file} does not exist")
        return read_json(file), str(file)
    if ref is None:
        return None, None
    shown = subprocess.run(
        ["git", "show", f"{ref}:./{Paths.metrics.as_posix()}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if shown.returncode != 0:
        log.warning("no baseline at %s: %s", ref, shown.stderr.strip())
        return None, None
    return json.loads(shown.stdout), f"git {ref}"
