"""What the ``export`` and ``validate`` stages end with, whatever the task.

``export``: parity with the native model, then the serving bundle, the Triton model
repository and the MLflow log of the ONNX model. ``validate``: the verdict, the report and
the model card (each task's begins with :func:`card_header`), and a one-line error naming
the failed gates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

import mlflow
import numpy as np
import onnx

from . import model_repository
from .config import PROJECT, Paths, StageError
from .files import atomic_dir, atomic_path, write_json
from .serve.bundle import write_bundle
from .serve.model import OnnxModel
from .serve.settings import ServeSettings
from .tracking import pipeline_run
from .verdict import Verdict

log = logging.getLogger(__name__)
EXAMPLE_ROWS = 3  # rows (and their expected predictions) shipped for smoke tests


def parity(
    model: OnnxModel, native_probabilities: np.ndarray, columns: Mapping[str, Sequence[Any]]
) -> dict[str, float]:
    """Compare the ONNX model with the native probabilities on the same rows."""
    prediction = model.predict_columns(columns)
    native_labels = model.schema.target.labels(native_probabilities)
    return {
        "max_abs_diff": float(np.abs(prediction.probabilities - native_probabilities).max()),
        "label_agreement": float((prediction.labels == native_labels).mean()),
        "rows": len(native_labels),
    }


def publish(
    paths: Paths,
    model: OnnxModel,
    onnx_bytes: bytes,
    rows: list[dict[str, Any]],
    result: dict[str, float],
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Write the bundle, the model repository and the parity ``result``; log them to MLflow.

    ``rows`` (at most :data:`EXAMPLE_ROWS`) and their predictions are the bundle's example.
    """
    example = {"rows": rows, "predictions": model.predict_rows(rows).to_json(model.classes)}
    with atomic_dir(paths.bundle) as folder:
        write_bundle(folder, onnx_bytes, model.metadata, example, extra)
    # Named and batched like the project's server by default (SERVE_MODEL_NAME, ...ROWS).
    serving = ServeSettings.model_fields
    with atomic_dir(paths.model_repository) as folder:
        name, batch = serving["model_name"].default, serving["max_batch_rows"].default
        model_repository.write(folder, onnx_bytes, name, batch)
    write_json(paths.parity, result)
    with pipeline_run(paths):
        mlflow.log_metrics({f"parity.{name}": value for name, value in result.items()})
        mlflow.set_tag("model.onnx_sha256", model.sha256)
        mlflow.onnx.log_model(onnx.load_from_string(onnx_bytes), name="model", input_example=None)
    log.info("exported ONNX model %s, parity %s", model.sha256[:12], result)


def publish_verdict(paths: Paths, verdict: Verdict, report: str, model_card: str) -> None:
    """Write the verdict, the report and the model card; fail naming the failed gates.

    Raises:
        StageError: when a gate failed.
    """
    write_json(paths.verdict, verdict.to_json())
    for path, text in {paths.report: report, paths.model_card: model_card}.items():
        with atomic_path(path) as temporary:
            temporary.write_text(text, encoding="utf-8")
    for gate in verdict.gates:
        log.info("gate %-12s %-14s %s", gate.name, gate.status, gate.detail)
    if verdict.failed:
        failed = "; ".join(gate.failure() for gate in verdict.failed)
        raise StageError(f"model rejected by gate(s): {failed}; see {paths.report}")


def card_header(model: str, verdict: Verdict) -> list[str]:
    """A model card's first lines: the project, its summary, what the model is and its hash."""
    return [
        f"# Model card: {PROJECT}",
        "",
        metadata.metadata(PROJECT)["Summary"],
        "",
        "## Model",
        "",
        f"- Framework: {model}",
        f"- Model (ONNX, SHA-256): `{verdict.model_sha256}`",
    ]


def verdict_line(verdict: Verdict) -> str:
    """The verdict and every gate's status, as one Markdown list item."""
    gates = "; ".join(f"{gate.name} {gate.status.replace('_', ' ')}" for gate in verdict.gates)
    return f"- Verdict: {'passed' if verdict.passed else 'REJECTED'}: {gates}."
