"""The onnxruntime session over a serving bundle's model, and the mapping from rows to its inputs.

Export checks parity through this same class, so the parity gate covers the exact code path
that serves requests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ..schema import Schema
from .bundle import METADATA_FILE, MODEL_FILE, read_manifest

# The model's inputs: one [rows, 1] array per feature, [rows, height, width, channels] for an image.
Feeds = dict[str, np.ndarray]


def session_options() -> ort.SessionOptions:
    """Session options for many tiny requests: one thread and no spinning.

    Thread hand-offs and busy-waiting cost more than they save on small batches and would
    steal the CPU from the event loop.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


@dataclass(frozen=True)
class Prediction:
    """Labels and per-class probabilities for a batch."""

    labels: np.ndarray
    probabilities: np.ndarray

    def slice(self, start: int, end: int) -> Prediction:
        """The rows ``start:end`` of the batch."""
        return Prediction(self.labels[start:end], self.probabilities[start:end])

    def to_json(self, classes: Sequence[int]) -> list[dict[str, Any]]:
        """The API's form: one ``{"label", "probabilities": {class: p}}`` per row."""
        names = [str(cls) for cls in classes]
        # tolist() converts every element in C, to the same Python ints and floats one by one.
        return [
            {"label": label, "probabilities": dict(zip(names, row, strict=True))}
            for label, row in zip(self.labels.tolist(), self.probabilities.tolist(), strict=True)
        ]


class OnnxModel:
    """An onnxruntime session plus the schema that turns rows into its inputs."""

    def __init__(self, onnx_bytes: bytes, metadata: Mapping[str, Any]) -> None:
        """Create the session from the serialized model and its bundle metadata."""
        self.metadata = dict(metadata)
        self.schema = Schema.model_validate(metadata["schema"])
        self.sha256 = hashlib.sha256(onnx_bytes).hexdigest()
        self._session = ort.InferenceSession(
            onnx_bytes, session_options(), providers=["CPUExecutionProvider"]
        )
        # In the graph's order, which clients of the Open Inference Protocol see.
        self._dtypes = {
            tensor.name: object if tensor.type == "tensor(string)" else np.float32
            for tensor in self._session.get_inputs()
        }
        self.shapes = {
            tensor.name: [int(dim) for dim in tensor.shape[1:]]
            for tensor in self._session.get_inputs()
        }

    @classmethod
    def load(cls, bundle: Path) -> OnnxModel:
        """Load ``model.onnx`` and ``metadata.json`` from a bundle checked against its manifest."""
        read_manifest(bundle)
        metadata = json.loads((bundle / METADATA_FILE).read_text(encoding="utf-8"))
        return cls((bundle / MODEL_FILE).read_bytes(), metadata)

    @property
    def classes(self) -> list[int]:
        """Class labels in probability-column order."""
        return self.schema.target.classes

    @property
    def inputs(self) -> dict[str, type]:
        """The model's inputs, one tensor per feature, and their element types.

        Each is ``[rows, *shapes[name]]``: ``[rows, 1]`` for a value, ``[rows, height, width,
        channels]`` for an image.
        """
        return self._dtypes

    def feeds_from_columns(self, columns: Mapping[str, Sequence[Any]]) -> Feeds:
        """The model's inputs from one sequence of values per feature."""
        return {
            name: np.asarray(columns[name], dtype=dtype).reshape(-1, *self.shapes[name])
            for name, dtype in self._dtypes.items()
        }

    def feeds_from_rows(self, rows: Sequence[Mapping[str, Any]]) -> Feeds:
        """The model's inputs from validated request rows (one mapping per row)."""
        return self.feeds_from_columns({name: [row[name] for row in rows] for name in self._dtypes})

    def predict(self, feeds: Feeds) -> Prediction:
        """Labels and probabilities for the rows of ``feeds``."""
        labels, probabilities = self._session.run(None, feeds)
        return Prediction(labels=labels, probabilities=probabilities)

    def predict_columns(self, columns: Mapping[str, Sequence[Any]]) -> Prediction:
        """Predict from one sequence of values per feature."""
        return self.predict(self.feeds_from_columns(columns))

    def predict_rows(self, rows: Sequence[Mapping[str, Any]]) -> Prediction:
        """Predict from validated request rows (one mapping per row)."""
        return self.predict(self.feeds_from_rows(rows))


def rows_of(feeds: Feeds) -> int:
    """How many rows ``feeds`` holds."""
    return len(next(iter(feeds.values())))


def concatenate(parts: Sequence[Feeds]) -> Feeds:
    """The feeds of several requests as one batch, rows in order."""
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
