"""TensorFlow: a Keras 3 multilayer perceptron on the tabular preprocessing, early stopping.

Keras runs on the TensorFlow backend, written the ``keras.Sequential`` / ``model.fit`` way
TensorFlow users expect. The preprocessing (standardized numbers, one-hot categories) is
fitted on the training rows and the network learns on its output. Training is seeded and
deterministic on CPU (TensorFlow's op determinism): shuffled mini-batches, a stratified
validation split, early stopping on the validation loss with the best epoch's weights
restored. Export converts the network with tf2onnx and joins it to the preprocessing's ONNX
graph, so serving feeds raw feature values and needs neither TensorFlow nor scikit-learn.
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
import tf2onnx
from sklearn.compose import ColumnTransformer

from ..networks import OPSET, NetworkParams, behind_preprocessing, matrix, training_arrays
from ..schema import Schema
from . import Progress, quiet

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


def device(choice: str) -> str:
    """``auto`` takes a GPU when TensorFlow sees one, else the CPU (the deterministic one)."""
    if choice == "auto":
        choice = "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    return f"/{choice}:0"


def fit(
    features: pd.DataFrame,
    target: pd.Series,
    schema: Schema,
    params: Params,
    seed: int,
    progress: Progress | None = None,
) -> Model:
    """Train with early stopping; the same data, params and seed give the same model on CPU."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    arrays = training_arrays(features, target, schema, params.validation_fraction, seed)
    callbacks = [keras.callbacks.EarlyStopping(patience=params.patience, restore_best_weights=True)]
    if progress:
        report = progress  # bound for the lambda: mypy cannot narrow inside it
        callbacks.append(
            keras.callbacks.LambdaCallback(on_epoch_end=lambda _, logs: report(_curve(logs)))
        )
    with tf.device(device(params.device)):
        model = network(
            arrays.x_fit.shape[1], params.hidden, params.dropout, len(schema.target.classes)
        )
        model.compile(
            optimizer=keras.optimizers.AdamW(
                learning_rate=params.learning_rate, weight_decay=params.weight_decay
            ),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        history = model.fit(
            arrays.x_fit,
            arrays.y_fit,
            batch_size=params.batch_size,
            epochs=params.max_epochs,
            validation_data=(arrays.x_val, arrays.y_val),
            callbacks=callbacks,
            shuffle=True,
            verbose="auto",  # a progress bar on a terminal, one line per epoch elsewhere
        ).history
    epochs = zip(*history.values(), strict=True)  # Keras keeps one list per metric
    curves = [_curve(dict(zip(history, values, strict=True))) for values in epochs]
    return Model(arrays.preprocess, model, curves)


def _curve(logs: dict[str, float]) -> dict[str, float]:
    """One epoch of Keras' logs under the names every framework's curves use."""
    return {
        "train_loss": float(logs["loss"]),
        "val_loss": float(logs["val_loss"]),
        "val_accuracy": float(logs["val_accuracy"]),
    }


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
    """The network (tf2onnx) behind the preprocessing's graph.

    Converted as a ``tf.function``: tf2onnx's ``from_keras`` cannot read Keras 3 models
    (tensorflow-onnx#2329).
    """
    signature = [tf.TensorSpec([None, model.network.input_shape[-1]], tf.float32, "features")]
    forward = tf.function(lambda features: model.network(features, training=False))
    with quiet("tf2onnx"):
        converted, _ = tf2onnx.convert.from_function(
            forward, input_signature=signature, opset=OPSET
        )
    # The output is named after TensorFlow's last op: rename it to the joined graph's name.
    produced = converted.graph.output[0].name
    for node in converted.graph.node:
        node.output[:] = ["probabilities" if name == produced else name for name in node.output]
    converted.graph.output[0].name = "probabilities"
    return behind_preprocessing(converted, model.preprocess, schema).SerializeToString()
