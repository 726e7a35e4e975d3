"""scikit-learn: the tabular preprocessing and a LogisticRegression in one pipeline (joblib).

The preprocessing lives inside the pipeline, so the ONNX export carries it too and the serving
app feeds raw feature values.
"""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from ..schema import Schema
from ..tabular import convert, preprocessor
from . import Progress

NAME = "sklearn"
MODEL_FILE = "model.joblib"


class Params(BaseModel):
    """Hyper-parameters of the ``train`` section of ``params.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    C: float = Field(gt=0)
    max_iter: int = Field(gt=0)


def fit(
    features: pd.DataFrame,
    target: pd.Series,
    schema: Schema,
    params: Params,
    seed: int,
    progress: Progress | None = None,  # one step, no epochs: never called
) -> Pipeline:
    """Fit the pipeline; the same data, params and seed give the same model."""
    preprocess = preprocessor(schema)
    classifier = LogisticRegression(C=params.C, max_iter=params.max_iter, random_state=seed)
    model = Pipeline([("preprocess", preprocess), ("classifier", classifier)])
    return model.fit(features, target)


def predict_proba(model: Pipeline, features: pd.DataFrame) -> np.ndarray:
    """Class probabilities, columns ordered like ``schema.target.classes``."""
    return model.predict_proba(features)


def curves(model: Pipeline) -> list[dict[str, float]]:
    """LogisticRegression is not trained in epochs: no curves."""
    return []


def save(model: Pipeline, folder: Path) -> None:
    """Persist the fitted pipeline into ``folder``."""
    joblib.dump(model, folder / MODEL_FILE)


def load(folder: Path) -> Pipeline:
    """Load a pipeline written by :func:`save`."""
    return joblib.load(folder / MODEL_FILE)


def to_onnx(model: Pipeline, schema: Schema) -> bytes:
    """Convert to ONNX with one ``[N, 1]`` input per feature and plain probability output."""
    options = {id(model.steps[-1][1]): {"zipmap": False}}
    return convert(model, schema, opset=17, options=options).SerializeToString()
