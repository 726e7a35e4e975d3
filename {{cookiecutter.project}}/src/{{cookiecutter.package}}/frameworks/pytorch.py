"""PyTorch: a multilayer perceptron on the tabular preprocessing, trained with early stopping.

The preprocessing (standardized numbers, one-hot categories) is fitted on the training rows
and the network learns on its output. Training is seeded and deterministic on CPU: shuffled
mini-batches, a stratified validation split, early stopping on the validation loss, and the
best epoch's weights kept (the checkpoint ``save`` writes). Export joins the preprocessing's
ONNX graph to the network's (``torch.onnx``), so serving feeds raw feature values exactly as
with scikit-learn, and needs neither torch nor scikit-learn.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import joblib
import numpy as np
import onnx
import pandas as pd
import torch
from onnx import compose, helper, numpy_helper
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

from ..schema import Schema
from ..tabular import convert, preprocessor

NAME = "pytorch"
PREPROCESS_FILE = "preprocess.joblib"
CHECKPOINT_FILE = "checkpoint.pt"
OPSET = 18


class Params(BaseModel):
    """Hyper-parameters of the ``train`` section of ``params.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hidden: list[PositiveInt] = Field(min_length=1)
    dropout: float = Field(ge=0, lt=1)
    learning_rate: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    batch_size: PositiveInt
    max_epochs: PositiveInt
    patience: PositiveInt  # epochs without a better validation loss before training stops
    validation_fraction: float = Field(gt=0, lt=0.5)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"


@dataclass
class Model:
    """The fitted preprocessing, the network (logits out) and how training went."""

    preprocess: ColumnTransformer
    network: torch.nn.Sequential
    classes: list[int]
    curves: list[dict[str, float]] = field(default_factory=list)


def network(
    inputs: int, hidden: Sequence[int], dropout: float, outputs: int
) -> torch.nn.Sequential:
    """Linear -> ReLU -> Dropout per hidden layer, then a linear layer to one logit per class."""
    layers: list[torch.nn.Module] = []
    for width in hidden:
        layers += [torch.nn.Linear(inputs, width), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
        inputs = width
    return torch.nn.Sequential(*layers, torch.nn.Linear(inputs, outputs))


def device(choice: str) -> torch.device:
    """``auto`` takes CUDA, then Apple's MPS, then the CPU (the only deterministic one)."""
    if choice == "auto":
        choice = (
            "cuda"
            if torch.cuda.is_available()
            else "mps"
            if torch.backends.mps.is_available()
            else "cpu"
        )
    return torch.device(choice)


def fit(
    features: pd.DataFrame, target: pd.Series, schema: Schema, params: Params, seed: int
) -> Model:
    """Train with early stopping; the same data, params and seed give the same model on CPU."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    classes = schema.target.classes
    fit_rows, val_rows, fit_target, val_target = train_test_split(
        features, target, test_size=params.validation_fraction, random_state=seed, stratify=target
    )
    preprocess = preprocessor(schema).fit(fit_rows)
    run_on = device(params.device)
    x_fit, x_val = (_tensor(preprocess.transform(rows), run_on) for rows in (fit_rows, val_rows))
    index = {cls: position for position, cls in enumerate(classes)}
    y_fit, y_val = (
        torch.tensor(labels.map(index).to_numpy(dtype=np.int64), device=run_on)
        for labels in (fit_target, val_target)
    )
    model = network(x_fit.shape[1], params.hidden, params.dropout, len(classes)).to(run_on)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay
    )
    loss_of = torch.nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(seed)
    curves: list[dict[str, float]] = []
    best_loss, best_state, waited = float("inf"), copy.deepcopy(model.state_dict()), 0
    epochs = tqdm(range(params.max_epochs), desc="train", unit="epoch", disable=None)
    for _ in epochs:
        model.train()
        total = 0.0
        for batch in torch.randperm(len(x_fit), generator=shuffle).split(params.batch_size):
            optimizer.zero_grad()
            loss = loss_of(model(x_fit[batch]), y_fit[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            val_loss = float(loss_of(logits, y_val))
            val_accuracy = float((logits.argmax(dim=1) == y_val).float().mean())
        curves.append(
            {"train_loss": total / len(x_fit), "val_loss": val_loss, "val_accuracy": val_accuracy}
        )
        epochs.set_postfix(curves[-1])
        if val_loss < best_loss:
            best_loss, best_state, waited = val_loss, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= params.patience:
                break
    model.load_state_dict(best_state)
    return Model(preprocess, model.cpu().eval(), classes, curves)


def predict_proba(model: Model, features: pd.DataFrame) -> np.ndarray:
    """Class probabilities, columns ordered like ``schema.target.classes``."""
    with torch.no_grad():
        logits = model.network(_tensor(model.preprocess.transform(features), torch.device("cpu")))
        return torch.softmax(logits, dim=1).numpy()


def curves(model: Model) -> list[dict[str, float]]:
    """Per-epoch training and validation loss and validation accuracy."""
    return model.curves


def save(model: Model, folder: Path) -> None:
    """The preprocessing (joblib) and a checkpoint: the best weights and how to rebuild the net."""
    joblib.dump(model.preprocess, folder / PREPROCESS_FILE)
    linear = [layer for layer in model.network if isinstance(layer, torch.nn.Linear)]
    dropout = [layer.p for layer in model.network if isinstance(layer, torch.nn.Dropout)]
    checkpoint = {
        "inputs": linear[0].in_features,
        "layers": [layer.out_features for layer in linear],
        "dropout": dropout[0] if dropout else 0.0,
        "classes": model.classes,
        "curves": model.curves,
        "state_dict": model.network.state_dict(),
    }
    torch.save(checkpoint, folder / CHECKPOINT_FILE)


def load(folder: Path) -> Model:
    """Load a model written by :func:`save`."""
    checkpoint = torch.load(folder / CHECKPOINT_FILE, weights_only=True)
    *hidden, outputs = checkpoint["layers"]
    net = network(checkpoint["inputs"], hidden, checkpoint["dropout"], outputs)
    net.load_state_dict(checkpoint["state_dict"])
    preprocess = joblib.load(folder / PREPROCESS_FILE)
    return Model(preprocess, net.eval(), checkpoint["classes"], checkpoint["curves"])


def to_onnx(model: Model, schema: Schema) -> bytes:
    """The preprocessing's graph, then the network's with a softmax, then the label.

    Outputs ``label`` (int64, the most probable class) and ``probabilities``, as every
    framework's export does.
    """
    preprocess = convert(model.preprocess, schema, opset=OPSET)
    buffer = io.BytesIO()
    with _quiet("torch.onnx", "onnx_ir", "onnxscript"):
        torch.onnx.export(
            torch.nn.Sequential(model.network, torch.nn.Softmax(dim=1)).eval(),
            (torch.zeros(2, model.network[0].in_features),),
            buffer,
            input_names=["features"],
            output_names=["probabilities"],
            dynamic_shapes=({0: torch.export.Dim("rows")},),
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    net = onnx.load_from_string(buffer.getvalue())
    preprocess.ir_version = net.ir_version
    joined = compose.merge_models(
        preprocess, net, io_map=[(preprocess.graph.output[0].name, "features")]
    )
    graph = joined.graph
    graph.initializer.append(
        numpy_helper.from_array(np.asarray(model.classes, dtype=np.int64), "classes")
    )
    graph.node.extend(
        [
            helper.make_node("ArgMax", ["probabilities"], ["class_index"], axis=1, keepdims=0),
            helper.make_node("Gather", ["classes", "class_index"], ["label"], axis=0),
        ]
    )
    probabilities = graph.output[0]
    del graph.output[:]
    graph.output.extend(
        [helper.make_tensor_value_info("label", onnx.TensorProto.INT64, ["rows"]), probabilities]
    )
    onnx.checker.check_model(joined, full_check=True)
    return joined.SerializeToString()


def _tensor(matrix: np.ndarray, on: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(matrix, dtype=np.float32), device=on)


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Keep the exporter's chatter out of the stage's log.

    It logs its progress, warns about optional torchvision operators this model never uses,
    and trips deprecation warnings inside torch itself.
    """
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
