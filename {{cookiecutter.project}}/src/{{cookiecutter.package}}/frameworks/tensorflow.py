"""TensorFlow: a Keras 3 multilayer perceptron on the tabular preprocessing, early stopping.

Keras runs on the TensorFlow backend, written the ``keras.Sequential`` / ``model.fit`` way
TensorFlow users expect. The preprocessing (standardized numbers, one-hot categories) is
fitted on the training rows and the network learns on its output, with a stratified
validation split for :mod:`.keras_networks`' early stopping. Export converts the network with
tf2onnx and joins it to the preprocessing's ONNX graph, so serving feeds raw feature values
and needs neither TensorFlow nor scikit-learn.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no start-up banners in the stage logs

import joblib
import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from sklearn.compose import ColumnTransformer

from ..networks import NetworkParams, behind_preprocessing, matrix, training_arrays
from ..schema import Schema
from . import Progress
from .keras_networks import device, exported, fit_epochs, seeded

NAME = "tensorflow"
PREPROCESS_FILE = "preprocess.joblib"
NETWORK_FILE = "network.joblib"


class Params(NetworkParams):
    """Hyper-parameters of the ``train`` section of ``params.yaml``."""

    device: Literal["auto", "cpu", "gpu"] = "auto"


@dataclass
class Model:
    """The fitted preprocessing, the Keras network (probabilities out) and its curves."""

    preprocess: ColumnTransformer
    network: keras.Sequential
    curves: list[dict[str, float]] = field(default_factory=list)


def network(inputs: int, hidden: Sequence[int], dropout: float, outputs: int) -> keras.Sequential:
    """Dense (ReLU) and Dropout per hidden layer, then a softmax over the classes.

    Every layer is named: Keras would number them per process, and the names reach the
    exported graph, whose bytes must not depend on how many models the process built.
    """
    layers: list[keras.layers.Layer] = [keras.Input((inputs,), name="features")]
    for number, width in enumerate(hidden, start=1):
        layers += [
            keras.layers.Dense(width, activation="relu", name=f"hidden_{number}"),
            keras.layers.Dropout(dropout, name=f"dropout_{number}"),
        ]
    output = keras.layers.Dense(outputs, activation="softmax", name="probabilities")
    return keras.Sequential([*layers, output], name="mlp")


def fit(
    features: pd.DataFrame,
    target: pd.Series,
    schema: Schema,
    params: Params,
    seed: int,
    progress: Progress | None = None,
) -> Model:
    """Train with early stopping; the same data, params and seed give the same model on CPU."""
    seeded(seed)
    arrays = training_arrays(features, target, schema, params.validation_fraction, seed)
    with tf.device(device(params.device)):
        model = network(
            arrays.x_fit.shape[1], params.hidden, params.dropout, len(schema.target.classes)
        )
        fit, val = (arrays.x_fit, arrays.y_fit), (arrays.x_val, arrays.y_val)
        curves = fit_epochs(model, fit, val, params, progress)
    return Model(arrays.preprocess, model, curves)


def predict_proba(model: Model, features: pd.DataFrame) -> np.ndarray:
    """Class probabilities, columns ordered like ``schema.target.classes``."""
    return np.asarray(model.network(matrix(model.preprocess, features), training=False))


def unmitigated(model: Model) -> None:
    """Networks train without fairness mitigation: nothing to compare with."""
    return None


def curves(model: Model) -> list[dict[str, float]]:
    """Per-epoch training and validation loss and validation accuracy."""
    return model.curves


def linear(model: Model, schema: Schema) -> None:
    """A multilayer perceptron is not linear: encrypted inference does not apply to it."""
    return None


def save(model: Model, folder: Path) -> None:
    """The preprocessing, and the network's shape and weights (joblib).

    Not Keras's ``.keras`` archive: it records the time it was saved, so every training
    would look like a new model to DVC.
    """
    joblib.dump(model.preprocess, folder / PREPROCESS_FILE)
    dense = [layer for layer in model.network.layers if isinstance(layer, keras.layers.Dense)]
    dropout = [
        layer.rate for layer in model.network.layers if isinstance(layer, keras.layers.Dropout)
    ]
    shape = {
        "inputs": model.network.input_shape[-1],
        "layers": [layer.units for layer in dense],
        "dropout": dropout[0] if dropout else 0.0,
    }
    weights = [np.asarray(weight) for weight in model.network.get_weights()]
    joblib.dump({**shape, "weights": weights, "curves": model.curves}, folder / NETWORK_FILE)


def load(folder: Path) -> Model:
    """Load a model written by :func:`save`."""
    saved = joblib.load(folder / NETWORK_FILE)
    *hidden, outputs = saved["layers"]
    net = network(saved["inputs"], hidden, saved["dropout"], outputs)
    net.set_weights(saved["weights"])
    return Model(joblib.load(folder / PREPROCESS_FILE), net, saved["curves"])


def to_onnx(model: Model, schema: Schema) -> bytes:
    """The network (tf2onnx) behind the preprocessing's graph."""
    converted = exported(model.network, "features")
    return behind_preprocessing(converted, model.preprocess, schema).SerializeToString()
