"""The ``export`` stage: convert to ONNX, check parity with the native model, log to MLflow."""

from __future__ import annotations

import logging
import shutil
from typing import Any

import mlflow
import numpy as np
import onnx

from . import frameworks
from .config import Paths
from .data import read_prepared
from .files import write_json
from .schema import Schema
from .serve.model import OnnxModel, write_bundle
from .smoke import EXAMPLE_FILE
from .tracking import pipeline_run

log = logging.getLogger(__name__)
EXAMPLE_ROWS = 3  # test rows (and their expected predictions) shipped for smoke tests


def parity(
    model: OnnxModel, native_probabilities: np.ndarray, columns: dict[str, Any]
) -> dict[str, float]:
    """Compare the ONNX model with the native probabilities on the same rows."""
    prediction = model.predict_columns(columns)
    native_labels = model.schema.target.labels(native_probabilities)
    return {
        "max_abs_diff": float(np.abs(prediction.probabilities - native_probabilities).max()),
        "label_agreement": float((prediction.labels == native_labels).mean()),
        "rows": len(native_labels),
    }


def export(schema: Schema) -> dict[str, float]:
    """Write the serving bundle and ``metrics/parity.json``; the validate stage gates parity."""
    native = frameworks.load(Paths.model)
    onnx_bytes = frameworks.to_onnx(native, schema)
    metadata = {"schema": schema.model_dump(mode="json"), "framework": frameworks.NAME}
    shutil.rmtree(Paths.bundle, ignore_errors=True)
    write_bundle(Paths.bundle, onnx_bytes, metadata)
    model = OnnxModel(onnx_bytes, metadata)

    features, _ = read_prepared(Paths.test, schema)
    columns = {name: features[name].to_list() for name in schema.features}
    result = parity(model, frameworks.predict_proba(native, features), columns)
    write_json(Paths.parity, result)
    example_rows = features.head(EXAMPLE_ROWS).astype(object).to_dict(orient="records")
    write_json(
        Paths.bundle / EXAMPLE_FILE,
        {
            "rows": example_rows,
            "predictions": model.predict_rows(example_rows).to_json(model.classes),
        },
    )

    with pipeline_run():
        mlflow.log_metrics({f"parity.{name}": value for name, value in result.items()})
        mlflow.set_tag("model.onnx_sha256", model.sha256)
        mlflow.onnx.log_model(onnx.load_from_string(onnx_bytes), name="model", input_example=None)
    log.info("exported ONNX model %s, parity %s", model.sha256[:12], result)
    return result
