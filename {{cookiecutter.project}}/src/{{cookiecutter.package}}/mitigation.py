"""Fairlearn mitigation for the scikit-learn framework, limited to what ships as one model.

``grid_search`` is Fairlearn's ``GridSearch`` reduction. It trains the classifier again on
reweighted and relabelled copies of the training split, one per Lagrange multiplier on a grid
for the chosen constraint. Then it keeps the one model with the best trade-off between error
and constraint violation. That model is an ordinary classifier: it exports to ONNX and is
judged by the parity gate like an unmitigated one.

Fairlearn's other techniques have no single model to export, so they are refused by name
(see :data:`REFUSED`).
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd
from fairlearn.reductions import DemographicParity, EqualizedOdds, GridSearch

from .config import StageError

Technique = Literal["none", "grid_search", "exponentiated_gradient", "threshold_optimizer"]
Constraint = Literal["demographic_parity", "equalized_odds"]
CONSTRAINTS = {"demographic_parity": DemographicParity, "equalized_odds": EqualizedOdds}
REFUSED = {
    "exponentiated_gradient": "exponentiated_gradient cannot be exported to ONNX: it predicts "
    "with a randomized mixture of models; grid_search ships the single best model it trains",
    "threshold_optimizer": "threshold_optimizer cannot be exported to ONNX: it needs the "
    "sensitive feature at prediction time and picks between thresholds at random; "
    "grid_search ships the single best model it trains",
}


def exportable(technique: Technique) -> Technique:
    """``technique``, or a ValueError saying why it cannot ship."""
    if technique in REFUSED:
        raise ValueError(REFUSED[technique])
    return technique


def grid_search(
    classifier: Any,
    matrix: Any,
    target: pd.Series,
    sensitive: pd.DataFrame,
    constraint: Constraint,
    grid_size: int,
) -> Any:
    """The best of ``grid_size`` copies of ``classifier`` trained under ``constraint``."""
    if sensitive.columns.empty:
        raise StageError(
            "params.yaml: train.fairness_mitigation needs a sensitive feature: declare one under "
            "`sensitive` in data/schema.yaml"
        )
    search = GridSearch(classifier, constraints=CONSTRAINTS[constraint](), grid_size=grid_size)
    search.fit(matrix, target, sensitive_features=sensitive)
    return search.predictors_[search.best_idx_]
