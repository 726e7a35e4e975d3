"""What every task's Keras network shares: seeding, the device, ``model.fit``, the ONNX export.

Keras runs on the TensorFlow backend. Training is seeded and deterministic on CPU
(TensorFlow's op determinism): shuffled mini-batches, early stopping on the validation loss
with the best epoch's weights restored, a progress bar on a terminal.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no start-up banners in the stage logs

import keras
import numpy as np
import onnx
import tensorflow as tf
import tf2onnx

from ..config import LoopParams
from ..onnx_graph import OPSET, probabilities_out
from . import Progress, quiet


def seeded(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and make TensorFlow's ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def device(choice: str) -> str:
    """``auto`` takes a GPU when TensorFlow sees one, else the CPU (the deterministic one)."""
    if choice == "auto":
        choice = "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    return f"/{choice}:0"


def fit_epochs(
    model: keras.Model,
    fit: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    params: LoopParams,
    progress: Progress | None = None,
) -> list[dict[str, float]]:
    """Compile ``model`` (probabilities out) with AdamW, train it, return the curves.

    Labels are class indices. ``progress`` gets each epoch's curve entry.
    """
    callbacks = [keras.callbacks.EarlyStopping(patience=params.patience, restore_best_weights=True)]
    if progress:
        report = progress  # bound for the lambda: mypy cannot narrow inside it
        callbacks.append(
            keras.callbacks.LambdaCallback(on_epoch_end=lambda _, logs: report(_curve(logs)))
        )
    model.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate=params.learning_rate, weight_decay=params.weight_decay
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        *fit,
        batch_size=params.batch_size,
        epochs=params.max_epochs,
        validation_data=val,
        callbacks=callbacks,
        shuffle=True,
        verbose="auto",  # a progress bar on a terminal, one line per epoch elsewhere
    ).history
    epochs = zip(*history.values(), strict=True)  # Keras keeps one list per metric
    return [_curve(dict(zip(history, values, strict=True))) for values in epochs]


def _curve(logs: dict[str, float]) -> dict[str, float]:
    """One epoch of Keras' logs under the names every framework's curves use."""
    return {
        "train_loss": float(logs["loss"]),
        "val_loss": float(logs["val_loss"]),
        "val_accuracy": float(logs["val_accuracy"]),
    }


def exported(network: keras.Model, input_name: str) -> onnx.ModelProto:
    """``network`` (probabilities out) through tf2onnx: ``probabilities`` out, any rows in.

    Converted as a ``tf.function``: tf2onnx's ``from_keras`` cannot read Keras 3 models
    (tensorflow-onnx#2329).
    """
    signature = [tf.TensorSpec([None, *network.input_shape[1:]], tf.float32, input_name)]
    forward = tf.function(lambda inputs: network(inputs, training=False))
    with quiet("tf2onnx"):
        converted, _ = tf2onnx.convert.from_function(
            forward, input_signature=signature, opset=OPSET
        )
    probabilities_out(converted)  # named after TensorFlow's last op
    return converted
