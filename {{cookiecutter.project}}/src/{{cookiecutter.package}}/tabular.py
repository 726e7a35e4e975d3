"""The tabular task's model input: preprocessing every framework shares, and its ONNX inputs.

Numeric columns are standardized and categories one-hot encoded with the schema's category
list. The preprocessing is fitted on training rows only and exported with the model, so the
serving app feeds raw feature values whatever the framework. Differentially private training
scales numbers by the schema's declared ranges instead, so the data shapes nothing but the
model it pays for (:func:`fitted_on_bounds`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import onnx
import pandas as pd
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

from .config import StageError
from .schema import CategoryColumn, Schema

Numbers = Literal["standardize", "passthrough", "to_unit_range"]
SCALERS = {"standardize": StandardScaler, "to_unit_range": MinMaxScaler}


def preprocessor(schema: Schema, *, numbers: Numbers = "standardize") -> ColumnTransformer:
    """An unfitted transformer from raw feature columns to one numeric matrix.

    ``numbers="passthrough"`` leaves numbers as they are, for models that split on thresholds.
    """
    categorical = [name for name, col in schema.columns.items() if isinstance(col, CategoryColumn)]
    numeric = [name for name in schema.features if name not in categorical]
    scaler = SCALERS[numbers]() if numbers in SCALERS else "passthrough"
    return ColumnTransformer(
        [
            ("numeric", scaler, numeric),
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


def fitted_on_bounds(schema: Schema) -> ColumnTransformer:
    """The preprocessing of private training, fitted on the schema alone, never on a row.

    Each number is mapped from its declared ``[min, max]`` to ``[0, 1]`` and categories are
    one-hot, so every row it makes has a norm of at most the root of the feature count.

    Raises:
        StageError: a numeric column lacks ``min`` or ``max``.
    """
    unbounded = schema.unbounded()
    if unbounded:
        raise StageError(
            "params.yaml: train.dp_epsilon: private training scales each number by its "
            f"declared range, and {unbounded[0]} has no min and max in data/schema.yaml"
        )
    corners = {
        name: column.categories[:1] * 2
        if isinstance(column, CategoryColumn)
        else [column.min, column.max]
        for name, column in schema.columns.items()
    }
    return preprocessor(schema, numbers="to_unit_range").fit(pd.DataFrame(corners))


def folded(
    preprocess: ColumnTransformer, coef: np.ndarray, intercept: np.ndarray, schema: Schema
) -> tuple[np.ndarray, np.ndarray]:
    """A linear model behind ``preprocess`` as weights and bias over the unscaled inputs.

    The inputs are each number as it is, then one indicator per category (the encrypted
    endpoint's order, :func:`..serve.encrypted.inputs`). Every scaling here is affine per
    column, so two probe rows (numbers all 0, then all 1) measure it, and it folds into the
    weights whatever scaler was fitted.
    """
    numeric = [name for name, col in schema.columns.items() if not isinstance(col, CategoryColumn)]
    probe = pd.DataFrame(
        {
            name: column.categories[:1] * 2 if isinstance(column, CategoryColumn) else [0.0, 1.0]
            for name, column in schema.columns.items()
        }
    )
    zero, one = np.asarray(preprocess.transform(probe), dtype=np.float64)[:, : len(numeric)]
    weights = np.array(coef, dtype=np.float64)
    bias = np.asarray(intercept, dtype=np.float64) + weights[:, : len(numeric)] @ zero
    weights[:, : len(numeric)] *= one - zero
    return weights, bias


def convert(
    model: Any, schema: Schema, opset: int, options: dict[int, Any] | None = None
) -> onnx.ModelProto:
    """Convert a fitted scikit-learn model (or the bare preprocessor) to ONNX.

    One ``[N, 1]`` input per feature: strings for categories, floats otherwise.
    """
    inputs = [
        (
            name,
            StringTensorType([None, 1])
            if isinstance(col, CategoryColumn)
            else FloatTensorType([None, 1]),
        )
        for name, col in schema.columns.items()
    ]
    converted = to_onnx(
        model, initial_types=inputs, options=options, target_opset={"": opset, "ai.onnx.ml": 3}
    )
    # skl2onnx lists the opsets in set order, which changes with PYTHONHASHSEED: sort them so
    # the same model always serializes to the same bytes (and DVC sees no change).
    opsets = sorted(converted.opset_import, key=lambda opset: opset.domain)
    del converted.opset_import[:]
    converted.opset_import.extend(opsets)
    return converted
