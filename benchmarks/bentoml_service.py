"""Contender in the serving benchmark: a BentoML 1.4 service over the same ONNX model.

Written the way BentoML's documentation shows a service: a class under ``@bentoml.service``
whose ``__init__`` opens the onnxruntime session, and a typed ``@bentoml.api`` method taking
the same ``{"rows": [...]}`` body as the generated server's ``/predict``. It reads the bundle
directly, so it runs in its own environment (.venv/bench, from requirements-bench.txt) without
the generated project installed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
import onnxruntime as ort
from pydantic import create_model

BUNDLE = Path(os.environ.get("SERVE_MODEL_DIR", "models/serving")).resolve()
SCHEMA = json.loads((BUNDLE / "metadata.json").read_text(encoding="utf-8"))["schema"]
Row = create_model(
    "Row",
    **{
        name: (str if column["type"] == "category" else float, ...)
        for name, column in SCHEMA["columns"].items()
    },
)


@bentoml.service(workers=1)
class Classifier:
    """The model behind one API."""

    def __init__(self) -> None:
        """Open the session; remember each input's element type and the class names."""
        self.session = ort.InferenceSession(
            str(BUNDLE / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        self.inputs = {
            tensor.name: object if tensor.type == "tensor(string)" else np.float32
            for tensor in self.session.get_inputs()
        }
        self.classes = [str(cls) for cls in SCHEMA["target"]["classes"]]

    @bentoml.api
    def predict(self, rows: list[Row]) -> dict[str, Any]:  # type: ignore[valid-type]
        """Labels and probabilities for a batch of rows."""
        feeds = {
            name: np.asarray([getattr(row, name) for row in rows], dtype=dtype).reshape(-1, 1)
            for name, dtype in self.inputs.items()
        }
        labels, probabilities = self.session.run(None, feeds)
        return {
            "predictions": [
                {
                    "label": int(label),
                    "probabilities": dict(zip(self.classes, map(float, row), strict=True)),
                }
                for label, row in zip(labels, probabilities, strict=True)
            ]
        }
