"""The gates a model must pass before it ships. They fail closed.

Each gate is a small function returning a :class:`~.verdict.Gate`: absolute thresholds (a
minimum for a score, a maximum for a loss), no regression against a baseline, a fairness
bound per sensitive feature, ONNX parity, encrypted parity, and the privacy budget.
:func:`decide` applies them all.
"""

from __future__ import annotations

from typing import Any

from .config import (
    Bound,
    EncryptedParityBound,
    FairnessBound,
    ParityBound,
    PrivacyParams,
    ValidateParams,
)
from .verdict import Baseline, Check, Gate, Op, Status, Verdict


def _check(name: str, value: float | None, op: Op, bound: float) -> Check:
    passed = value is not None and (value >= bound if op == ">=" else value <= bound)
    return Check(name=name, value=value, op=op, bound=bound, passed=passed)


def _gate(name: str, checks: list[Check], detail: str) -> Gate:
    status: Status = "passed" if checks and all(check.passed for check in checks) else "failed"
    return Gate(name=name, status=status, detail=detail, checks=checks)


def _sentences(*parts: str) -> str:
    return ". ".join(part[0].upper() + part[1:].rstrip(".") for part in parts if part) + "."


def _direction(bound: Bound) -> tuple[Op, float]:
    return (">=", bound.min) if bound.min is not None else ("<=", bound.max)  # type: ignore[return-value]


def threshold_gate(metrics: dict[str, float], thresholds: dict[str, Bound]) -> Gate:
    """Every configured metric meets its bound; no thresholds at all is a failure."""
    if not thresholds:
        return Gate(
            "thresholds", "failed", "no thresholds configured in params.yaml (validate.thresholds)"
        )
    checks = [_check(name, metrics.get(name), *_direction(b)) for name, b in thresholds.items()]
    missing = [check.name for check in checks if check.value is None]
    detail = (
        f"metrics missing from the evaluation: {', '.join(missing)}"
        if missing
        else "bound per metric (min for scores, max for losses)"
    )
    return _gate("thresholds", checks, detail)


def baseline_gate(
    metrics: dict[str, float], baseline: Baseline, thresholds: dict[str, Bound], tolerance: float
) -> Gate:
    """No thresholded metric is more than ``tolerance`` worse than the baseline's."""
    if baseline.metrics is None:
        return Gate(
            "baseline",
            "skipped",
            _sentences("no baseline: absolute thresholds only", baseline.note),
        )
    checks = []
    for name, bound in thresholds.items():
        if name not in baseline.metrics:
            continue
        op, _ = _direction(bound)
        allowed = baseline.metrics[name] + (-tolerance if op == ">=" else tolerance)
        checks.append(_check(name, metrics.get(name), op, round(allowed, 6)))
    if not checks:
        return Gate("baseline", "skipped", "the baseline shares no thresholded metric")
    return _gate(
        "baseline",
        checks,
        _sentences(f"at most {tolerance} worse than the baseline", baseline.note),
    )


def fairness_gate(fairness: dict[str, dict[str, Any]], bound: FairnessBound | None) -> Gate:
    """The chosen Fairlearn difference stays below its bound for each sensitive feature."""
    if bound is None:
        return Gate(
            "fairness", "not_applicable", "switched off in params.yaml (validate.fairness: null)"
        )
    if not fairness:
        return Gate(
            "fairness",
            "failed",
            "no fairness metrics: declare sensitive features in data/schema.yaml "
            "or set validate.fairness: null",
        )
    checks = [
        _check(f"{feature}.{bound.metric}", values.get(bound.metric), "<=", bound.max)
        for feature, values in fairness.items()
    ]
    before = [
        f"{feature} {values['unmitigated'][bound.metric]:.4g}"
        for feature, values in fairness.items()
        if "unmitigated" in values
    ]
    detail = f"{bound.metric} between groups" + (
        f" (before Fairlearn mitigation: {', '.join(before)})" if before else ""
    )
    return _gate("fairness", checks, detail)


def parity_gate(parity: dict[str, float], bound: ParityBound) -> Gate:
    """The ONNX model reproduces the native model's probabilities and labels."""
    checks = [
        _check("max_abs_diff", parity.get("max_abs_diff"), "<=", bound.max_abs_diff),
        _check("label_agreement", parity.get("label_agreement"), ">=", bound.min_label_agreement),
    ]
    return _gate(
        "onnx_parity", checks, f"ONNX vs native model on {parity.get('rows', '?')} test rows"
    )


def encrypted_parity_gate(encrypted: dict[str, Any], bound: EncryptedParityBound) -> Gate:
    """The encrypted endpoint's predictions match the plaintext model's on the test split."""
    if not encrypted.get("enabled"):
        return Gate(
            "encrypted", "not_applicable", "switched off in params.yaml (encryption.enabled)"
        )
    if not encrypted["applicable"]:
        return Gate("encrypted", "not_applicable", encrypted["reason"])
    checks = [
        _check(
            "max_abs_logit_error",
            encrypted.get("max_abs_logit_error"),
            "<=",
            bound.max_abs_logit_error,
        ),
        _check(
            "label_agreement", encrypted.get("label_agreement"), ">=", bound.min_label_agreement
        ),
    ]
    return _gate(
        "encrypted",
        checks,
        f"CKKS-encrypted vs plaintext predictions on {encrypted.get('rows', '?')} test rows",
    )


def privacy_gate(ledger: dict[str, dict[str, float]], privacy: PrivacyParams) -> Gate:
    """What the pipeline spent on the training data, per ledger entry, stays within the budget.

    ``ledger`` maps each private release (the data statistics, training) to its epsilon and
    delta; they add up (basic composition). Privacy on without a budget fails.
    """
    if not privacy.enabled:
        return Gate("privacy", "not_applicable", "switched off in params.yaml (privacy.enabled)")
    if privacy.budget is None:
        return Gate(
            "privacy",
            "failed",
            "privacy is on and params.yaml declares no budget (privacy.budget: {epsilon: ...})",
        )
    epsilon = sum(spent["epsilon"] for spent in ledger.values())
    delta = sum(spent["delta"] for spent in ledger.values())
    checks = [
        _check("epsilon", round(epsilon, 9), "<=", privacy.budget.epsilon),
        _check("delta", delta, "<=", privacy.budget.delta),
    ]
    spent = ", ".join(f"{name} ε={entry['epsilon']:.4g}" for name, entry in ledger.items())
    return _gate("privacy", checks, f"(ε, δ) spent on the training data: {spent or 'nothing'}")


def decide(
    metrics: dict[str, float],
    fairness: dict[str, dict[str, Any]],
    parity: dict[str, float],
    params: ValidateParams,
    baseline: Baseline,
    model_sha256: str = "",
    test_split_md5: str = "",
    privacy: PrivacyParams | None = None,
    ledger: dict[str, dict[str, float]] | None = None,
    encrypted: dict[str, Any] | None = None,
    inapplicable: dict[str, str] | None = None,
) -> Verdict:
    """Apply every gate; the model passes only if none failed.

    ``inapplicable`` names gates that cannot apply to this kind of model (fairness to an
    agent) with the reason, which the verdict states in their place.
    """
    gates = [
        threshold_gate(metrics, params.thresholds),
        baseline_gate(metrics, baseline, params.thresholds, params.max_regression),
        fairness_gate(fairness, params.fairness),
        parity_gate(parity, params.parity),
        encrypted_parity_gate(encrypted or {"enabled": False}, params.encrypted_parity),
        privacy_gate(ledger or {}, privacy or PrivacyParams()),
    ]
    reasons = inapplicable or {}
    gates = [
        Gate(gate.name, "not_applicable", reasons[gate.name]) if gate.name in reasons else gate
        for gate in gates
    ]
    return Verdict(
        passed=all(gate.status != "failed" for gate in gates),
        gates=gates,
        metrics=metrics,
        model_sha256=model_sha256,
        test_split_md5=test_split_md5,
        baseline=baseline,
    )
