"""The model card, ``reports/model_card.md``: what the model is and where it falls short.

``validate`` writes it from facts the pipeline has already recorded (the verdict, the test
metrics, the per-group fairness metrics, the data contract, the parameters, the bundle), so
no line of it is typed by hand and it changes exactly when they do. What the pipeline does
not do is said, not left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import EncryptionParams, PrivacyParams, Tuned
from .publish import card_header
from .report import explanation_table
from .schema import CategoryColumn, NumericColumn, Schema
from .verdict import Verdict

GROUP_METRICS = ("count", "accuracy", "selection_rate", "true_positive_rate", "false_positive_rate")


@dataclass(frozen=True)
class Facts:
    """What the card is written from."""

    verdict: Verdict
    fairness: dict[str, Any]  # metrics/fairness.json
    schema: Schema
    framework: str
    train_params: dict[str, Any]
    seed: int
    tuned: Tuned
    source: str  # where ingest read the data
    train_rows: int
    train_md5: str
    test_rows: int
    explanations: dict[str, Any]  # reports/explanations.json
    top: int  # features listed
    privacy: PrivacyParams
    ledger: dict[str, dict[str, float]]  # what each private release spent
    encryption: EncryptionParams
    encrypted: dict[str, Any]  # metrics/encrypted_parity.json


def render(facts: Facts) -> str:
    """The card as Markdown."""
    verdict = facts.verdict
    lines = [
        *card_header(f"{facts.framework}, exported to ONNX; served by onnxruntime.", verdict),
        f"- Training parameters (seed {facts.seed}): "
        + ", ".join(f"`{name}={value}`" for name, value in sorted(facts.train_params.items())),
        f"- Hyper-parameter search: {_tuning(facts.tuned)}",
        f"- Verdict: **{'passed' if verdict.passed else 'rejected'}** "
        + "; ".join(f"{gate.name} {gate.status.replace('_', ' ')}" for gate in verdict.gates),
        "",
        "## Data",
        "",
        f"- Source: `{facts.source}`",
        f"- Training split: {facts.train_rows} rows (MD5 `{facts.train_md5}`); test split: "
        f"{facts.test_rows} rows (MD5 `{verdict.test_split_md5}`).",
        f"- Target: `{facts.schema.target.name}`, classes "
        + ", ".join(map(str, facts.schema.target.classes)),
        "",
        "| feature | type | values the model was trained for (the server refuses others) |",
        "| --- | --- | --- |",
        *(
            f"| {name} | {column.type} | {_values(column)} |"
            for name, column in facts.schema.columns.items()
            if name != facts.schema.target.name
        ),
        "",
        f"## Performance on the test split ({facts.test_rows} rows)",
        "",
        "| metric | value |",
        "| --- | ---: |",
        *(f"| {name} | {value:.4f} |" for name, value in sorted(verdict.metrics.items())),
        "",
        "## Fairness",
        "",
        *_fairness(facts),
        "",
        "## Explanations",
        "",
        *explanation_table(facts.explanations, facts.top),
        "",
        "Interactions are not shown: each feature is varied alone, so the importance of a "
        "feature that only matters together with another is understated. The full shape "
        "functions are in `reports/explanations.html`.",
        "",
        "## Privacy",
        "",
        *_privacy(facts),
        "",
        "## Encrypted inference",
        "",
        _encrypted(facts),
        "",
        "## Limitations",
        "",
        f"- Judged on one test split of {facts.test_rows} rows from the same source as the "
        "training data: how it performs on other populations or later data is not measured.",
        "- Trained for the values in the table above; the server refuses requests outside them.",
        *_fairness_limits(facts.schema),
    ]
    return "\n".join(lines) + "\n"


def _privacy(facts: Facts) -> list[str]:
    if not facts.privacy.enabled and not facts.ledger:
        return [
            "Differential privacy is off: no privacy budget was spent, and the model and the "
            "data statistics in the report come from the raw data."
        ]
    budget = facts.privacy.budget
    if not facts.privacy.enabled:  # trained privately, with the gate off
        stated = "off (`params.yaml: privacy.enabled`): no budget is checked."
    else:
        stated = "on. Budget: " + (
            f"ε = {budget.epsilon:g}, δ = {budget.delta:g}." if budget else "none declared."
        )
    spent = [
        f"- {name}: ε = {entry['epsilon']:.4g}, δ = {entry['delta']:g}"
        for name, entry in facts.ledger.items()
    ]
    return [
        f"Differential privacy is {stated} Spent on the training data:",
        "",
        *(spent or ["- nothing"]),
        "",
        (
            "The data statistics in the report are released through OpenDP's Laplace mechanism. "
            if "statistics" in facts.ledger
            else "The data statistics in the report are exact. "
        )
        + (
            "The model is trained with differential privacy for one added or removed row "
            "(`train.dp_epsilon`; the README's Privacy section names the mechanism), on "
            "numbers scaled by the schema's declared ranges."
            if "training" in facts.ledger
            else "The model itself is trained without differential privacy: it can reveal "
            "facts about individual training rows."
        ),
    ]


def _encrypted(facts: Facts) -> str:
    encrypted, ckks = facts.encrypted, facts.encryption
    if not encrypted.get("enabled"):
        return (
            "Not offered (`params.yaml: encryption.enabled` is false): the server computes on "
            "plaintext features."
        )
    if not encrypted["applicable"]:
        return f"Not offered: {encrypted['reason']}."
    return (
        "Offered: `POST /encrypted/predict` computes the logits on CKKS ciphertexts (TenSEAL, "
        f"Microsoft SEAL; polynomial degree {ckks.poly_modulus_degree}, coefficient moduli "
        f"{ckks.coeff_mod_bit_sizes} bits, scale 2^{ckks.scale_bits}), up to "
        f"{ckks.poly_modulus_degree // 2} rows per request. The client "
        "(`encrypted_client`) keeps the secret key; the server holds no key and cannot read "
        f"the rows or the results. On {encrypted['rows']} test rows the largest logit error "
        f"was {encrypted['max_abs_logit_error']:.2g} and {encrypted['label_agreement']:.2%} of "
        "the labels matched the plaintext model's."
    )


def _tuning(tuned: Tuned) -> str:
    if not tuned.enabled:
        return "none (`params.yaml: tune` is off)."
    return (
        f"Ray Tune, {tuned.trials} trials ({tuned.stopped_early} stopped early), best "
        f"{tuned.metric} {tuned.score} on a validation share of the training split."
    )


def _values(column: NumericColumn | CategoryColumn) -> str:
    if isinstance(column, CategoryColumn):
        return ", ".join(column.categories)
    low = "-inf" if column.min is None else f"{column.min:g}"
    high = "inf" if column.max is None else f"{column.max:g}"
    return f"{low} to {high}"


def _fairness(facts: Facts) -> list[str]:
    if not facts.schema.sensitive:
        return ["Not measured: `data/schema.yaml` declares no sensitive feature."]
    lines: list[str] = []
    for feature in facts.schema.sensitive:
        measured = facts.fairness[feature]
        lines += [
            f"`{feature}`: demographic parity difference "
            f"{measured['demographic_parity_difference']:.4f}, equalized odds difference "
            f"{measured['equalized_odds_difference']:.4f}.",
            *_before_mitigation(measured, facts.train_params),
            "",
            "| group | " + " | ".join(name.replace("_", " ") for name in GROUP_METRICS) + " |",
            "| --- |" + " ---: |" * len(GROUP_METRICS),
            *(
                f"| {group} | " + " | ".join(f"{values[name]:.4g}" for name in GROUP_METRICS) + " |"
                for group, values in sorted(measured["by_group"].items())
            ),
            "",
        ]
    return lines[:-1]


def _before_mitigation(measured: dict[str, Any], train: dict[str, Any]) -> list[str]:
    if "unmitigated" not in measured:
        return []
    before = measured["unmitigated"]
    return [
        f"Before Fairlearn mitigation (`{train['fairness_mitigation']}` under "
        f"`{train['fairness_constraint']}`), the same model without it: demographic parity "
        f"difference {before['demographic_parity_difference']:.4f}, equalized odds difference "
        f"{before['equalized_odds_difference']:.4f}."
    ]


def _fairness_limits(schema: Schema) -> list[str]:
    if not schema.sensitive:
        return ["- Fairness between groups of people was not measured."]
    return [
        "- Fairness is measured for the declared sensitive features only ("
        + ", ".join(schema.sensitive)
        + "), by demographic parity and equalized odds between their groups."
    ]
