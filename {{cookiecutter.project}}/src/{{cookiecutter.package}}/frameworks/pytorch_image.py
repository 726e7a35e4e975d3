"""PyTorch: a small convolutional network, pretrained as a backbone and fine-tuned with a new head.

The backbone is a stack of blocks (3x3 convolution, batch normalization, ReLU, 2x2 max
pooling) whose last feature maps are flattened; the head is dropout and one linear layer to
one logit per class. ``pretrain`` trains backbone and a throw-away head on the source classes;
``fit`` puts a new head on that backbone and trains it with the backbone frozen, or with its
last ``unfreeze`` blocks trained too. Frozen blocks stay in evaluation mode while the rest
trains, so their weights and batch-normalization statistics do not change.

The network reads ``[rows, height, width, channels]`` pixels as served and scales them by the
schema's maximum itself, so the exported ONNX model takes raw pixel values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..config import LoopParams
from ..images import (
    Arrays,
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
from .torch_networks import device, exported, fit_epochs

NAME = "pytorch"
BACKBONE_FILE = "backbone.pt"
CHECKPOINT_FILE = "checkpoint.pt"


Device = Literal["auto", "cpu", "cuda", "mps"]


class PretrainParams(BackboneParams):
    """``params.yaml: pretrain.train``."""

    device: Device = "auto"


class Params(FineTuneParams):
    """``params.yaml: train``."""

    device: Device = "auto"


class ChannelsFirst(torch.nn.Module):
    """Served pixels ``[rows, height, width, channels]`` in ``[0, maximum]`` to torch's layout."""

    def __init__(self, maximum: float) -> None:
        """Scale by ``maximum``, the schema's largest pixel value."""
        super().__init__()
        self.maximum = maximum

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[rows, channels, height, width]`` in ``[0, 1]``."""
        return pixels.permute(0, 3, 1, 2) / self.maximum


@dataclass
class Backbone:
    """The pretrained blocks, how to rebuild them, and how pretraining went."""

    network: torch.nn.Sequential
    shape: list[int]  # of the images it reads: height, width, channels
    filters: list[int]
    classes: list[int]  # the source task's
    curves: list[dict[str, float]] = field(default_factory=list)

    @property
    def blocks(self) -> list[torch.nn.Module]:
        """The convolution blocks, first to last (the flattening after them has no weights)."""
        return list(self.network)[: len(self.filters)]

    @property
    def features(self) -> int:
        """How many values the backbone gives the head per image."""
        height, width, channels = self.shape
        with torch.no_grad():
            return int(self.network.eval()(torch.zeros(1, channels, height, width)).shape[1])


class Classifier(torch.nn.Module):
    """Pixels in, logits out: input scaling, backbone, head; the frozen blocks stay frozen."""

    def __init__(
        self, maximum: float, backbone: Backbone, head: torch.nn.Sequential, unfreeze: int
    ) -> None:
        """Freeze all but the backbone's last ``unfreeze`` blocks."""
        super().__init__()
        self.pixels = ChannelsFirst(maximum)
        self.backbone = backbone.network
        self.head = head
        self.frozen = backbone.blocks[: max(len(backbone.filters) - unfreeze, 0)]
        for block in self.frozen:
            block.requires_grad_(False)

    def train(self, mode: bool = True) -> Classifier:
        """Set the training mode, except that frozen blocks always evaluate."""
        super().train(mode)
        for block in self.frozen:  # batch normalization keeps its pretrained statistics
            block.eval()
        return self

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Logits of the classes."""
        return self.head(self.backbone(self.pixels(pixels)))


@dataclass
class Model:
    """The fine-tuned classifier, its classes, the backbone it started from and its curves."""

    network: Classifier
    backbone: Backbone
    classes: list[int]
    unfreeze: int
    dropout: float
    curves: list[dict[str, float]] = field(default_factory=list)


def backbone_network(channels: int, filters: list[int]) -> torch.nn.Sequential:
    """Convolution blocks with batch normalization, then their last maps flattened."""
    layers: list[torch.nn.Module] = []
    for width in filters:
        layers.append(
            torch.nn.Sequential(
                torch.nn.Conv2d(channels, width, kernel_size=3, padding=1),
                torch.nn.BatchNorm2d(width),
                torch.nn.ReLU(),
                torch.nn.MaxPool2d(2, ceil_mode=True),
            )
        )
        channels = width
    return torch.nn.Sequential(*layers, torch.nn.Flatten())


def head(inputs: int, dropout: float, classes: int) -> torch.nn.Sequential:
    """Dropout and one linear layer: a logit per class."""
    return torch.nn.Sequential(torch.nn.Dropout(dropout), torch.nn.Linear(inputs, classes))


def _train(
    network: torch.nn.Module,
    images: Images,
    classes: list[int],
    params: LoopParams,
    run_on: torch.device,
    seed: int,
    progress: Progress | None,
    description: str,
) -> list[dict[str, float]]:
    """Train on a stratified split of ``images``; labels become positions in ``classes``."""
    fit, val = training_arrays(images, classes, params.validation_fraction, seed)

    def tensors(arrays: Arrays) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor(arrays[0], device=run_on), torch.tensor(arrays[1], device=run_on)

    network.to(run_on)
    curves = fit_epochs(network, tensors(fit), tensors(val), params, seed, progress, description)
    network.cpu().eval()
    return curves


def pretrain(images: Images, schema: Schema, params: PretrainParams, seed: int) -> Backbone:
    """Train a backbone (and a head thrown away after) on ``images``' classes."""
    torch.manual_seed(seed)
    _, column = image_column(schema)
    classes = sorted({int(label) for label in images.labels})
    backbone = Backbone(backbone_network(column.channels, params.filters), column.shape,
                        list(params.filters), classes)  # fmt: skip
    top = head(backbone.features, params.dropout, len(classes))
    network = Classifier(column.max, backbone, top, unfreeze=len(params.filters))
    backbone.curves = _train(
        network, images, classes, params, device(params.device), seed, None, "pretrain"
    )
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
    torch.manual_seed(seed)
    column = check_backbone(backbone.shape, schema)
    unfreeze = params.unfreeze
    if params.from_scratch:
        backbone = Backbone(backbone_network(column.channels, backbone.filters),
                            backbone.shape, backbone.filters, backbone.classes)  # fmt: skip
        unfreeze = len(backbone.filters)
    classes = schema.target.classes
    network = Classifier(
        column.max, backbone, head(backbone.features, params.dropout, len(classes)), unfreeze
    )
    curves = _train(
        network, images, classes, params, device(params.device), seed, progress, "train"
    )
    return Model(network, backbone, classes, unfreeze, params.dropout, curves)


def predict_proba(model: Model, pixels: np.ndarray) -> np.ndarray:
    """Class probabilities of ``[rows, height, width, channels]`` pixels."""
    with torch.no_grad():
        logits = model.network.eval()(torch.as_tensor(pixels, dtype=torch.float32))
        return torch.softmax(logits, dim=1).numpy()


def curves(model: Model) -> list[dict[str, float]]:
    """Per-epoch training and validation loss and validation accuracy of fine-tuning."""
    return model.curves


def trainable(model: Model) -> list[str]:
    """The names of the parameters fine-tuning trained."""
    return [name for name, value in model.network.named_parameters() if value.requires_grad]


def backbone_state(backbone: Backbone) -> dict[str, np.ndarray]:
    """Every weight and batch-normalization statistic of the backbone, by name."""
    return {name: value.numpy().copy() for name, value in backbone.network.state_dict().items()}


def _backbone_checkpoint(backbone: Backbone) -> dict[str, Any]:
    return {
        "shape": backbone.shape,
        "filters": backbone.filters,
        "classes": backbone.classes,
        "curves": backbone.curves,
        "state_dict": backbone.network.state_dict(),
    }


def _backbone_from(checkpoint: dict[str, Any]) -> Backbone:
    network = backbone_network(checkpoint["shape"][-1], checkpoint["filters"])
    network.load_state_dict(checkpoint["state_dict"])
    return Backbone(
        network.eval(),
        checkpoint["shape"],
        checkpoint["filters"],
        checkpoint["classes"],
        checkpoint["curves"],
    )


def save_backbone(backbone: Backbone, folder: Path) -> None:
    """The backbone's checkpoint: its shape, weights and statistics, source classes, curves."""
    torch.save(_backbone_checkpoint(backbone), folder / BACKBONE_FILE)


def load_backbone(path: Path) -> Backbone:
    """A backbone written by :func:`save_backbone` (a folder, or its checkpoint file)."""
    file = path / BACKBONE_FILE if path.is_dir() else path
    return _backbone_from(torch.load(file, weights_only=True))


def save(model: Model, folder: Path) -> None:
    """A checkpoint of the classifier: the backbone's, the head's weights, how to rebuild it."""
    checkpoint = {
        "maximum": model.network.pixels.maximum,
        "backbone": _backbone_checkpoint(model.backbone),
        "head": model.network.head.state_dict(),
        "classes": model.classes,
        "unfreeze": model.unfreeze,
        "dropout": model.dropout,
        "curves": model.curves,
    }
    torch.save(checkpoint, folder / CHECKPOINT_FILE)


def load(folder: Path) -> Model:
    """Load a model written by :func:`save`."""
    saved = torch.load(folder / CHECKPOINT_FILE, weights_only=True)
    backbone = _backbone_from(saved["backbone"])
    classes = saved["classes"]
    top = head(backbone.features, saved["dropout"], len(classes))
    top.load_state_dict(saved["head"])
    network = Classifier(saved["maximum"], backbone, top, saved["unfreeze"])
    return Model(network.eval(), backbone, classes, saved["unfreeze"], saved["dropout"],
                 saved["curves"])  # fmt: skip


def to_onnx(model: Model, schema: Schema) -> bytes:
    """The classifier with a softmax (``torch.onnx``): pixels in, label and probabilities out."""
    name, column = image_column(schema)
    exported_graph = exported(model.network, torch.zeros(2, *column.shape), name)
    canonical_names(exported_graph.graph)
    return labelled(exported_graph, model.classes).SerializeToString()
