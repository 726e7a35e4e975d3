"""Classification metrics on the test split, overall and per group of each sensitive feature.

And the data of the confusion-matrix and ROC plots ``dvc plots`` draws.
"""

from __future__ import annotations

from typing import cast

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

from .config import Paths
from .files import atomic_path
from .schema import Schema

DIGITS = 6  # stable, readable metric files; far below any gate's tolerance


def classification_metrics(
    target: np.ndarray, probabilities: np.ndarray, schema: Schema
) -> dict[str, float]:
    """Accuracy, precision, recall, F1, ROC AUC and log loss.

    Precision, recall and F1 are the last class's when there are two, macro averages when
    there are more.
    """
    classes = schema.target.classes
    predicted = schema.target.labels(probabilities)
    binary = len(classes) == 2
    # Binary: of the positive class; more classes: the unweighted mean over them (macro).
    average = {"average": "binary", "pos_label": classes[-1]} if binary else {"average": "macro"}
    scores = {
        "accuracy": skm.accuracy_score(target, predicted),
        "precision": skm.precision_score(target, predicted, zero_division=0, **average),
        "recall": skm.recall_score(target, predicted, zero_division=0, **average),
        "f1": skm.f1_score(target, predicted, zero_division=0, **average),
        "roc_auc": skm.roc_auc_score(target, probabilities[:, 1])
        if binary
        else skm.roc_auc_score(target, probabilities, multi_class="ovr", labels=classes),
        "log_loss": skm.log_loss(target, probabilities, labels=classes),
    }
    return cast(dict[str, float], rounded(scores))


# The between-group differences each sensitive feature gets (the fairness gate bounds one).
DIFFERENCES = ("demographic_parity_difference", "equalized_odds_difference")


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
    return rounded(report)


def rounded(value: object) -> object:
    """Round every float in a nested structure to :data:`DIGITS` and unwrap numpy scalars."""
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, float | np.floating):
        return round(float(value), DIGITS)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_plots(
    target: np.ndarray, probabilities: np.ndarray, schema: Schema, paths: Paths
) -> None:
    """Confusion-matrix rows and the ROC curve (last class positive) as CSV for ``dvc plots``."""
    with atomic_path(paths.confusion) as temporary:
        pd.DataFrame({"actual": target, "predicted": schema.target.labels(probabilities)}).to_csv(
            temporary, index=False
        )
    fpr, tpr, _ = skm.roc_curve(target, probabilities[:, -1], pos_label=schema.target.classes[-1])
    with atomic_path(paths.roc) as temporary:
        pd.DataFrame({"fpr": fpr.round(DIGITS), "tpr": tpr.round(DIGITS)}).to_csv(
            temporary, index=False
        )
