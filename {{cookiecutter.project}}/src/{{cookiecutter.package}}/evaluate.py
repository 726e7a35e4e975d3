"""The ``evaluate`` stage: test-split metrics, DVC plot data and per-group fairness metrics."""

from __future__ import annotations

import logging

import mlflow
import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn import metrics as skm

from . import frameworks
from .config import Paths
from .data import read_prepared
from .files import atomic_path, write_json
from .schema import Schema
from .tracking import pipeline_run

log = logging.getLogger(__name__)
DIGITS = 6  # stable, readable metric files; far below any gate's tolerance


def classification_metrics(
    target: np.ndarray, probabilities: np.ndarray, schema: Schema
) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (positive class = last class) and ROC AUC."""
    predicted = schema.target.labels(probabilities)
    binary = len(schema.target.classes) == 2
    average = "binary" if binary else "macro"
    positive = schema.target.classes[-1]
    scores = {
        "accuracy": skm.accuracy_score(target, predicted),
        "precision": skm.precision_score(
            target, predicted, average=average, pos_label=positive, zero_division=0
        ),
        "recall": skm.recall_score(
            target, predicted, average=average, pos_label=positive, zero_division=0
        ),
        "f1": skm.f1_score(target, predicted, average=average, pos_label=positive, zero_division=0),
        "roc_auc": skm.roc_auc_score(target, probabilities[:, 1])
        if binary
        else skm.roc_auc_score(
            target, probabilities, multi_class="ovr", labels=schema.target.classes
        ),
    }
    return {name: round(float(value), DIGITS) for name, value in scores.items()}


def fairness_metrics(
    target: np.ndarray, predicted: np.ndarray, groups: pd.DataFrame, positive: int
) -> dict:
    """Per sensitive feature: between-group differences and the metrics of each group."""
    report = {}
    for feature in groups:
        sensitive = groups[feature].to_numpy()
        frame = MetricFrame(
            metrics={
                "accuracy": skm.accuracy_score,
                "selection_rate": selection_rate,
                "true_positive_rate": true_positive_rate,
                "false_positive_rate": false_positive_rate,
                "count": lambda y_true, _y_pred: len(y_true),
            },
            y_true=target == positive,
            y_pred=predicted == positive,
            sensitive_features=sensitive,
        )
        by_group = frame.by_group.to_dict(orient="index")
        report[feature] = {
            "demographic_parity_difference": demographic_parity_difference(
                target == positive, predicted == positive, sensitive_features=sensitive
            ),
            "equalized_odds_difference": equalized_odds_difference(
                target == positive, predicted == positive, sensitive_features=sensitive
            ),
            "by_group": {str(group): values for group, values in by_group.items()},
        }
    return _rounded(report)


def _rounded(value: object) -> object:
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, float | np.floating):
        return round(float(value), DIGITS)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_plots(target: np.ndarray, probabilities: np.ndarray, schema: Schema) -> None:
    """Confusion-matrix rows and the ROC curve as CSV for ``dvc plots``."""
    with atomic_path(Paths.confusion) as temporary:
        pd.DataFrame({"actual": target, "predicted": schema.target.labels(probabilities)}).to_csv(
            temporary, index=False
        )
    fpr, tpr, _ = skm.roc_curve(target, probabilities[:, -1], pos_label=schema.target.classes[-1])
    with atomic_path(Paths.roc) as temporary:
        pd.DataFrame({"fpr": fpr.round(DIGITS), "tpr": tpr.round(DIGITS)}).to_csv(
            temporary, index=False
        )


def evaluate(schema: Schema) -> dict[str, float]:
    """Score the model on the test split, write metrics and plots, log them to MLflow."""
    features, target = read_prepared(Paths.test, schema)
    probabilities = frameworks.predict_proba(frameworks.load(Paths.model), features)
    truth = target.to_numpy()
    scores = classification_metrics(truth, probabilities, schema)
    fairness = fairness_metrics(
        truth,
        schema.target.labels(probabilities),
        features[schema.sensitive],
        schema.target.classes[-1],
    )
    write_json(Paths.metrics, scores)
    write_json(Paths.fairness, fairness)
    write_plots(truth, probabilities, schema)
    with pipeline_run():
        mlflow.log_metrics(scores)
        for feature, values in fairness.items():
            for name in ("demographic_parity_difference", "equalized_odds_difference"):
                mlflow.log_metric(f"{feature}.{name}", values[name])
        for path in (Paths.metrics, Paths.fairness, Paths.confusion, Paths.roc):
            mlflow.log_artifact(str(path), artifact_path="evaluation")
    log.info("test metrics: %s", scores)
    return scores
