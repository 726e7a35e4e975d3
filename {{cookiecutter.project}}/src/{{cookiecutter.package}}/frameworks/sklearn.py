"""scikit-learn: a preprocessing + LogisticRegression pipeline, saved with joblib.

The preprocessing lives inside the pipeline, so the ONNX export carries it too and the serving
app feeds raw feature values.
"""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from skl2onnx import to_onnx as skl_to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ..schema import CategoryColumn, Schema

NAME = "sklearn"
MODEL_FILE = "model.joblib"


class Params(BaseModel):
    """Hyper-parameters of the ``train`` section of ``params.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    C: float = Field(gt=0)
    max_iter: int = Field(gt=0)


def fit(
    features: pd.DataFrame, target: pd.Series, schema: Schema, params: Params, seed: int
) -> Pipeline:
    """Fit the pipeline; the same data, params and seed give the same model."""
    categorical = [name for name, col in schema.columns.items() if isinstance(col, CategoryColumn)]
    numeric = [name for name in schema.features if name not in categorical]
    preprocess = ColumnTransformer(
        [
            ("numeric", StandardScaler(), numeric),
            (
                "categorical",
                OneHotEncoder(
                    categories=[schema.columns[name].categories for name in categorical],  # type: ignore[union-attr]
                    handle_unknown="error",
                ),
                categorical,
            ),
        ]
    )
    classifier = LogisticRegression(C=params.C, max_iter=params.max_iter, random_state=seed)
    model = Pipeline([("preprocess", preprocess), ("classifier", classifier)])
    return model.fit(features, target)


def predict_proba(model: Pipeline, features: pd.DataFrame) -> np.ndarray:
    """Class probabilities, columns ordered like ``schema.target.classes``."""
    return model.predict_proba(features)


def save(model: Pipeline, folder: Path) -> None:
    """Persist the fitted pipeline into ``folder``."""
    joblib.dump(model, folder / MODEL_FILE)


def load(folder: Path) -> Pipeline:
    """Load a pipeline written by :func:`save`."""
    return joblib.load(folder / MODEL_FILE)


def to_onnx(model: Pipeline, schema: Schema) -> bytes:
    """Convert to ONNX with one ``[N, 1]`` input per feature and plain probability output."""
    inputs = [
        (
            name,
            StringTensorType([None, 1])
            if isinstance(col, CategoryColumn)
            else FloatTensorType([None, 1]),
        )
        for name, col in schema.columns.items()
    ]
    onnx_model = skl_to_onnx(
        model,
        initial_types=inputs,
        options={id(model.steps[-1][1]): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    # skl2onnx lists the opsets in set order, which changes with PYTHONHASHSEED: sort them so
    # the same model always serializes to the same bytes (and DVC sees no change).
    opsets = sorted(onnx_model.opset_import, key=lambda opset: opset.domain)
    del onnx_model.opset_import[:]
    onnx_model.opset_import.extend(opsets)
    return onnx_model.SerializeToString()
