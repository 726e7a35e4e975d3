"""The tabular task's model input: preprocessing every framework shares, and its ONNX inputs.

Numeric columns are standardized and categories one-hot encoded with the schema's category
list. The preprocessing is fitted on training rows only and exported with the model, so the
serving app feeds raw feature values whatever the framework.
"""

from __future__ import annotations

from typing import Any

import onnx
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .schema import CategoryColumn, Schema


def preprocessor(schema: Schema, *, scale: bool = True) -> ColumnTransformer:
    """An unfitted transformer from raw feature columns to one numeric matrix.

    ``scale=False`` passes numbers through, for models that split on thresholds.
    """
    categorical = [name for name, col in schema.columns.items() if isinstance(col, CategoryColumn)]
    numeric = [name for name in schema.features if name not in categorical]
    return ColumnTransformer(
        [
            ("numeric", StandardScaler() if scale else "passthrough", numeric),
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
