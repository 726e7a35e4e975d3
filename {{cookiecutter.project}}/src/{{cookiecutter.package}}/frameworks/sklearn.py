"""scikit-learn: the tabular preprocessing and a classifier in one pipeline (joblib).

``train.model`` picks the classifier: a LogisticRegression, or InterpretML's Explainable
Boosting Machine (a glass-box model: a sum of one learned shape function per feature),
exported by ebm2onnx's converter for skl2onnx. The preprocessing lives inside the pipeline, so
the ONNX export carries it too and the serving app feeds raw feature values.

``train.dp_epsilon`` trains the logistic regression with differential privacy (objective
perturbation, :mod:`..private_training`) on features scaled by the schema's declared ranges.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import joblib
import numpy as np
import pandas as pd
from ebm2onnx.sklearn import convert_ebm_classifier, ebm_output_shape_calculator
from interpret.glassbox import ExplainableBoostingClassifier
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from skl2onnx import update_registered_converter
from sklearn.base import ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from .. import mitigation, private_training
from ..config import StageError
from ..schema import Schema
from ..tabular import convert, fitted_on_bounds, folded, preprocessor
from . import Progress

NAME = "sklearn"
MODEL_FILE = "model.joblib"


class Params(BaseModel):
    """Hyper-parameters of the ``train`` section of ``params.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Literal["logistic_regression", "ebm"] = "logistic_regression"
    # logistic_regression: inverse regularization strength and solver iterations.
    C: float = Field(gt=0)
    max_iter: int = Field(gt=0)
    # ebm: pairwise interaction terms (0: purely additive) and bagged models averaged.
    interactions: int = Field(default=0, ge=0)
    outer_bags: int = Field(default=8, gt=0)
    # Fairlearn mitigation for the sensitive features of data/schema.yaml (see mitigation.py).
    fairness_mitigation: mitigation.Technique = "none"
    fairness_constraint: mitigation.Constraint = "demographic_parity"
    mitigation_grid: int = Field(default=10, ge=2)  # grid_search: models trained
    # Differential privacy: the epsilon the logistic regression's training spends; None: off.
    dp_epsilon: float | None = Field(default=None, gt=0)

    _exportable = field_validator("fairness_mitigation")(mitigation.exportable)

    @model_validator(mode="after")
    def _private_training_applies(self) -> Params:
        if self.dp_epsilon is None:
            return self
        if self.model != "logistic_regression":
            raise ValueError(
                "dp_epsilon: differentially private training covers model: "
                f"logistic_regression (objective perturbation), not {self.model}"
            )
        if self.fairness_mitigation != "none":
            raise ValueError(
                "dp_epsilon: fairness mitigation trains several models on the data, each "
                "spending the budget again: set fairness_mitigation: none"
            )
        return self


def fit(
    features: pd.DataFrame,
    target: pd.Series,
    schema: Schema,
    params: Params,
    seed: int,
    progress: Progress | None = None,  # one step, no epochs: never called
) -> Pipeline:
    """Fit the pipeline; the same data, params and seed give the same model.

    With ``fairness_mitigation``, the unmitigated pipeline rides along as ``unmitigated_``,
    so ``evaluate`` can report the fairness before and after.
    """
    if params.dp_epsilon is not None:
        return _private(features, target, schema, params.C, params.dp_epsilon)
    ebm = params.model == "ebm"
    if ebm:  # unscaled, as served: the boosting splits on thresholds (see _as_served)
        features = _as_served(features)
    preprocess = preprocessor(schema, numbers="passthrough" if ebm else "standardize")
    preprocess.fit(features)
    matrix = preprocess.transform(features)
    model = Pipeline(
        [("preprocess", preprocess), ("classifier", _classifier(params, seed).fit(matrix, target))]
    )
    if params.fairness_mitigation == "none":
        return model
    fairer = mitigation.grid_search(
        _classifier(params, seed),
        matrix,
        target,
        features[schema.sensitive],
        params.fairness_constraint,
        params.mitigation_grid,
    )
    mitigated = Pipeline([("preprocess", preprocess), ("classifier", fairer)])
    mitigated.unmitigated_ = model
    return mitigated


def _private(
    features: pd.DataFrame,
    target: pd.Series,
    schema: Schema,
    inverse_regularization: float,
    epsilon: float,
) -> Pipeline:
    """An epsilon-DP logistic regression behind preprocessing fitted on the schema alone."""
    classes = schema.target.classes
    if len(classes) != 2:
        raise StageError(
            f"params.yaml: train.dp_epsilon: private training covers two classes; "
            f"data/schema.yaml declares {len(classes)}"
        )
    preprocess = fitted_on_bounds(schema)
    matrix = preprocess.transform(features)
    classifier = private_training.fit(
        matrix, target.to_numpy(), classes, len(schema.features), inverse_regularization, epsilon
    )
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


def _classifier(params: Params, seed: int) -> ClassifierMixin:
    if params.model == "ebm":
        # n_jobs=1: the same bags in the same order on every machine.
        return ExplainableBoostingClassifier(
            interactions=params.interactions,
            outer_bags=params.outer_bags,
            n_jobs=1,
            random_state=seed,
        )
    return LogisticRegression(C=params.C, max_iter=params.max_iter, random_state=seed)


def _as_served(features: pd.DataFrame) -> pd.DataFrame:
    """Numbers rounded to float32, as the ONNX model receives them.

    A value a hair from a bin edge would otherwise fall on one side of it in float64 and on
    the other in float32, and the served model's probability would jump.
    """
    numeric = features.select_dtypes("number").columns
    return features.astype(dict.fromkeys(numeric, np.float32)).astype(
        dict.fromkeys(numeric, np.float64)
    )


def _is_ebm(model: Pipeline) -> bool:
    return isinstance(model.steps[-1][1], ExplainableBoostingClassifier)


def predict_proba(model: Pipeline, features: pd.DataFrame) -> np.ndarray:
    """Class probabilities, columns ordered like ``schema.target.classes``."""
    return model.predict_proba(_as_served(features) if _is_ebm(model) else features)


def unmitigated(model: Pipeline) -> Pipeline | None:
    """The pipeline before fairness mitigation; None when none was applied."""
    return getattr(model, "unmitigated_", None)


def curves(model: Pipeline) -> list[dict[str, float]]:
    """Neither classifier is trained in epochs: no curves."""
    return []


def linear(model: Pipeline, schema: Schema) -> tuple[np.ndarray, np.ndarray] | None:
    """A linear classifier's weights and bias over the unscaled inputs; None for an EBM.

    Export checks that the probabilities are the logistic (softmax) of them.
    """
    classifier = model.steps[-1][1]
    if not hasattr(classifier, "coef_"):
        return None
    return folded(model.steps[0][1], classifier.coef_, classifier.intercept_, schema)


def save(model: Pipeline, folder: Path) -> None:
    """Persist the fitted pipeline into ``folder``."""
    joblib.dump(model, folder / MODEL_FILE)


def load(folder: Path) -> Pipeline:
    """Load a pipeline written by :func:`save`."""
    return joblib.load(folder / MODEL_FILE)


def to_onnx(model: Pipeline, schema: Schema) -> bytes:
    """Convert to ONNX with one ``[N, 1]`` input per feature and plain probability output."""
    if _is_ebm(model):
        # ebm2onnx's converter (already without zipmap) builds opset-18 nodes.
        update_registered_converter(
            ExplainableBoostingClassifier,
            "InterpretExplainableBoostingClassifier",
            ebm_output_shape_calculator,
            convert_ebm_classifier,
        )
        return convert(model, schema, opset=18).SerializeToString()
    options = {id(model.steps[-1][1]): {"zipmap": False}}
    return convert(model, schema, opset=17, options=options).SerializeToString()
