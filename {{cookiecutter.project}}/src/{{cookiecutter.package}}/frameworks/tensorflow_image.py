"""TensorFlow: a Keras convolutional network, pretrained as a backbone, fine-tuned with a new head.

The backbone is a stack of blocks (3x3 convolution, batch normalization, ReLU, 2x2 max
pooling) whose last feature maps are flattened; the head is dropout and a softmax layer over
the classes. ``pretrain`` trains backbone and a throw-away head on the source classes;
``fit`` puts a new head on that backbone and trains it with the backbone frozen
(``trainable = False``), or with its last ``unfreeze`` blocks trained too. Keras runs frozen
batch normalization in inference mode, so its statistics do not change either.

The network reads ``[rows, height, width, channels]`` pixels as served and rescales them by
the schema's maximum itself, so the exported ONNX model takes raw pixel values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no start-up banners in the stage logs

import joblib
import keras
import numpy as np
import tensorflow as tf

from ..config import LoopParams
from ..images import (
    BackboneParams,
    FineTuneParams,
    Images,
    check_backbone,
    image_column,
    training_arrays,
)
from ..onnx_graph import canonical_names, labelled
from ..schema import Schema
from . import Progress
from .keras_networks import device, exported, fit_epochs, seeded

NAME = "tensorflow"
BACKBONE_FILE = "backbone.joblib"
CHECKPOINT_FILE = "network.joblib"


Device = Literal["auto", "cpu", "gpu"]


class PretrainParams(BackboneParams):
    """``params.yaml: pretrain.train``."""

    device: Device = "auto"


class Params(FineTuneParams):
    """``params.yaml: train``."""

    device: Device = "auto"


@dataclass
class Backbone:
    """The pretrained blocks, how to rebuild them, and how pretraining went."""

    network: keras.Sequential
    shape: list[int]  # of the images it reads: height, width, channels
    filters: list[int]
    classes: list[int]  # the source task's
    curves: list[dict[str, float]] = field(default_factory=list)

    @property
    def blocks(self) -> list[keras.Sequential]:
        """The convolution blocks, first to last (the flattening after them has no weights)."""
        return self.network.layers[: len(self.filters)]


@dataclass
class Model:
    """The fine-tuned classifier, its classes, the backbone it started from and its curves."""

    network: keras.Sequential
    backbone: Backbone
    classes: list[int]
    unfreeze: int
    dropout: float
    curves: list[dict[str, float]] = field(default_factory=list)

    @property
    def head(self) -> keras.Sequential:
        """The layers after the backbone."""
        return self.network.get_layer("head")


def backbone_network(shape: list[int], filters: list[int]) -> keras.Sequential:
    """Convolution blocks with batch normalization, then their last maps flattened.

    Every layer is named: Keras would number them per process, and the names reach the
    exported graph, whose bytes must not depend on how many models the process built.
    """
    blocks = [
        keras.Sequential(
            [
                keras.layers.Conv2D(width, 3, padding="same", name=f"block{number}_conv"),
                keras.layers.BatchNormalization(name=f"block{number}_norm"),
                keras.layers.ReLU(name=f"block{number}_relu"),
                keras.layers.MaxPooling2D(2, padding="same", name=f"block{number}_pool"),
            ],
            name=f"block{number}",
        )
        for number, width in enumerate(filters)
    ]
    return keras.Sequential(
        [keras.Input(tuple(shape)), *blocks, keras.layers.Flatten(name="features")],
        name="backbone",
    )


def classifier(
    maximum: float, backbone: Backbone, dropout: float, classes: int, unfreeze: int
) -> keras.Sequential:
    """Rescaling, the backbone with all but its last ``unfreeze`` blocks frozen, a new head."""
    for block in backbone.blocks[: max(len(backbone.filters) - unfreeze, 0)]:
        block.trainable = False
    head = keras.Sequential(
        [
            keras.layers.Dropout(dropout, name="head_dropout"),
            keras.layers.Dense(classes, activation="softmax", name="head_probabilities"),
        ],
        name="head",
    )
    return keras.Sequential(
        [
            keras.Input(tuple(backbone.shape), name="image"),
            keras.layers.Rescaling(1 / maximum, name="pixels"),
            backbone.network,
            head,
        ],
        name="classifier",
    )


def _train(
    network: keras.Sequential,
    images: Images,
    classes: list[int],
    params: LoopParams,
    progress: Progress | None,
    seed: int,
) -> list[dict[str, float]]:
    """Train on a stratified split of ``images``; labels become positions in ``classes``."""
    fit, val = training_arrays(images, classes, params.validation_fraction, seed)
    return fit_epochs(network, fit, val, params, progress)


def pretrain(images: Images, schema: Schema, params: PretrainParams, seed: int) -> Backbone:
    """Train a backbone (and a head thrown away after) on ``images``' classes."""
    seeded(seed)
    _, column = image_column(schema)
    classes = sorted({int(label) for label in images.labels})
    with tf.device(device(params.device)):
        backbone = Backbone(backbone_network(column.shape, params.filters), column.shape,
                            list(params.filters), classes)  # fmt: skip
        network = classifier(
            column.max, backbone, params.dropout, len(classes), unfreeze=len(params.filters)
        )
        backbone.curves = _train(network, images, classes, params, None, seed)
    return backbone


def fit(
    images: Images,
    schema: Schema,
    params: Params,
    backbone: Backbone,
    seed: int,
    progress: Progress | None = None,
) -> Model:
    """A new head on ``backbone``, trained with all but its last ``unfreeze`` blocks frozen.

    ``from_scratch``: the backbone's architecture from random weights, every block trained.
    """
    seeded(seed)
    column = check_backbone(backbone.shape, schema)
    unfreeze = params.unfreeze
    classes = schema.target.classes
    with tf.device(device(params.device)):
        if params.from_scratch:
            backbone = Backbone(backbone_network(backbone.shape, backbone.filters),
                                backbone.shape, backbone.filters, backbone.classes)  # fmt: skip
            unfreeze = len(backbone.filters)
        network = classifier(column.max, backbone, params.dropout, len(classes), unfreeze)
        curves = _train(network, images, classes, params, progress, seed)
    return Model(network, backbone, classes, unfreeze, params.dropout, curves)


def predict_proba(model: Model, pixels: np.ndarray) -> np.ndarray:
    """Class probabilities of ``[rows, height, width, channels]`` pixels."""
    return np.asarray(model.network(pixels.astype(np.float32), training=False))


def curves(model: Model) -> list[dict[str, float]]:
    """Per-epoch training and validation loss and validation accuracy of fine-tuning."""
    return model.curves


def _named(prefix: str, layers: list[keras.layers.Layer], trainable: bool) -> dict[str, Any]:
    """``prefix.layer.weight`` -> variable, of the (trainable) weights of ``layers``."""
    return {
        f"{prefix}.{layer.name}.{weight.name}": weight
        for layer in layers
        for weight in (layer.trainable_weights if trainable else layer.weights)
    }


def trainable(model: Model) -> list[str]:
    """The names of the weights fine-tuning trained."""
    names = [
        name
        for number, block in enumerate(model.backbone.blocks)
        for name in _named(f"backbone.{number}", block.layers, trainable=True)
    ]
    return names + list(_named("head", model.head.layers, trainable=True))


def backbone_state(backbone: Backbone) -> dict[str, np.ndarray]:
    """Every weight and batch-normalization statistic of the backbone, by name."""
    return {
        name: np.array(weight)
        for number, block in enumerate(backbone.blocks)
        for name, weight in _named(str(number), block.layers, trainable=False).items()
    }


def _backbone_saved(backbone: Backbone) -> dict[str, Any]:
    return {
        "shape": backbone.shape,
        "filters": backbone.filters,
        "classes": backbone.classes,
        "curves": backbone.curves,
        "weights": [np.asarray(weight) for weight in backbone.network.get_weights()],
    }


def _backbone_from(saved: dict[str, Any]) -> Backbone:
    network = backbone_network(saved["shape"], saved["filters"])
    network.set_weights(saved["weights"])
    return Backbone(network, saved["shape"], saved["filters"], saved["classes"], saved["curves"])


def save_backbone(backbone: Backbone, folder: Path) -> None:
    """The backbone's shape, weights and statistics, source classes and curves (joblib).

    Not Keras's ``.keras`` archive: it records the time it was saved, so every run would
    look like a new backbone to DVC.
    """
    joblib.dump(_backbone_saved(backbone), folder / BACKBONE_FILE)


def load_backbone(path: Path) -> Backbone:
    """A backbone written by :func:`save_backbone` (a folder, or its checkpoint file)."""
    return _backbone_from(joblib.load(path / BACKBONE_FILE if path.is_dir() else path))


def save(model: Model, folder: Path) -> None:
    """The classifier: its backbone's checkpoint, the head's weights, how to rebuild it."""
    saved = {
        "maximum": 1 / float(model.network.get_layer("pixels").scale),
        "backbone": _backbone_saved(model.backbone),
        "head": [np.asarray(weight) for weight in model.head.get_weights()],
        "classes": model.classes,
        "unfreeze": model.unfreeze,
        "dropout": model.dropout,
        "curves": model.curves,
    }
    joblib.dump(saved, folder / CHECKPOINT_FILE)


def load(folder: Path) -> Model:
    """Load a model written by :func:`save`."""
    saved = joblib.load(folder / CHECKPOINT_FILE)
    backbone = _backbone_from(saved["backbone"])
    classes = saved["classes"]
    network = classifier(
        saved["maximum"], backbone, saved["dropout"], len(classes), saved["unfreeze"]
    )
    network.get_layer("head").set_weights(saved["head"])
    return Model(network, backbone, classes, saved["unfreeze"], saved["dropout"],
                 saved["curves"])  # fmt: skip


def to_onnx(model: Model, schema: Schema) -> bytes:
    """The classifier (tf2onnx): pixels in, label and probabilities out."""
    converted = exported(model.network, image_column(schema)[0])
    canonical_names(converted.graph)
    return labelled(converted, model.classes).SerializeToString()
