"""PyTorch: a multilayer perceptron on the tabular preprocessing, trained with early stopping.

The preprocessing (standardized numbers, one-hot categories) is fitted on the training rows
and the network learns on its output. Training is seeded and deterministic on CPU: shuffled
mini-batches, a stratified validation split, early stopping on the validation loss, and the
best epoch's weights kept (the checkpoint ``save`` writes). Export joins the preprocessing's
ONNX graph to the network's (``torch.onnx``), so serving feeds raw feature values exactly as
with scikit-learn, and needs neither torch nor scikit-learn.

``train.dp_epsilon`` trains with differential privacy instead: DP-SGD with Opacus (each
row's gradient clipped to ``max_grad_norm``, Gaussian noise sized by Opacus' RDP accountant
for ``max_epochs`` epochs at ``dp_epsilon`` and ``dp_delta``), on numbers scaled by the
schema's declared ranges, every training row and every epoch: early stopping would choose
by data the accountant does not see.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import joblib
import numpy as np
import pandas as pd
import torch
from opacus import PrivacyEngine
from pydantic import Field
from sklearn.compose import ColumnTransformer
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from ..networks import NetworkParams, behind_preprocessing, matrix, training_arrays
from ..schema import Schema
from ..tabular import fitted_on_bounds
from . import Progress
from .torch_networks import device, exported, fit_epochs

NAME = "pytorch"
PREPROCESS_FILE = "preprocess.joblib"
CHECKPOINT_FILE = "checkpoint.pt"


class Params(NetworkParams):
    """Hyper-parameters of the ``train`` section of ``params.yaml``."""

    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    # Differential privacy (DP-SGD): the epsilon and delta training spends; None: off.
    dp_epsilon: float | None = Field(default=None, gt=0)
    dp_delta: float = Field(default=1e-5, gt=0, lt=1)
    max_grad_norm: float = Field(default=1.0, gt=0)  # each row's gradient is clipped to it


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


def fit(
    features: pd.DataFrame,
    target: pd.Series,
    schema: Schema,
    params: Params,
    seed: int,
    progress: Progress | None = None,
) -> Model:
    """Train with early stopping; the same data, params and seed give the same model on CPU."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    if params.dp_epsilon is not None:
        return _fit_private(features, target, schema, params, params.dp_epsilon)
    arrays = training_arrays(features, target, schema, params.validation_fraction, seed)
    run_on = device(params.device)
    x_fit, x_val = (torch.tensor(x, device=run_on) for x in (arrays.x_fit, arrays.x_val))
    y_fit, y_val = (torch.tensor(y, device=run_on) for y in (arrays.y_fit, arrays.y_val))
    classes = schema.target.classes
    model = network(x_fit.shape[1], params.hidden, params.dropout, len(classes)).to(run_on)
    curves = fit_epochs(model, (x_fit, y_fit), (x_val, y_val), params, seed, progress)
    return Model(arrays.preprocess, model.cpu().eval(), classes, curves)


def _fit_private(
    features: pd.DataFrame, target: pd.Series, schema: Schema, params: Params, epsilon: float
) -> Model:
    """DP-SGD for ``max_epochs`` epochs over every row; the curve is the epsilon spent so far.

    The noise comes from a generator seeded by the operating system, not by ``seed``.
    """
    preprocess = fitted_on_bounds(schema)
    index = {cls: position for position, cls in enumerate(schema.target.classes)}
    rows = TensorDataset(
        torch.as_tensor(matrix(preprocess, features)),
        torch.as_tensor(target.map(index).to_numpy(dtype=np.int64)),
    )
    classes = schema.target.classes
    model = network(rows.tensors[0].shape[1], params.hidden, params.dropout, len(classes))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay
    )
    engine = PrivacyEngine(accountant="rdp")
    noise = torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little"))
    loss_of = torch.nn.CrossEntropyLoss()
    curves: list[dict[str, float]] = []
    with warnings.catch_warnings():
        # Opacus and torch warn on every step: of a Mersenne Twister rather than a secure
        # generator (the README says so), and of a backward hook on a layer whose input needs
        # no gradient (the first one; per-row gradients are unaffected).
        warnings.filterwarnings("ignore", category=UserWarning, module="opacus|torch")
        private, optimizer, batches = engine.make_private_with_epsilon(
            module=model,
            optimizer=optimizer,
            data_loader=DataLoader(rows, batch_size=params.batch_size),
            target_epsilon=epsilon,
            target_delta=params.dp_delta,
            epochs=params.max_epochs,
            max_grad_norm=params.max_grad_norm,
            noise_generator=noise,
        )
        for _ in tqdm(range(params.max_epochs), desc="train (DP-SGD)", unit="epoch", disable=None):
            private.train()
            for x, y in batches:
                if len(x) == 0:  # Poisson sampling can draw an empty batch
                    continue
                optimizer.zero_grad()
                loss_of(private(x), y).backward()
                optimizer.step()
            curves.append({"epsilon": engine.get_epsilon(params.dp_delta)})
    return Model(preprocess, model.eval(), classes, curves)


def predict_proba(model: Model, features: pd.DataFrame) -> np.ndarray:
    """Class probabilities, columns ordered like ``schema.target.classes``."""
    with torch.no_grad():
        logits = model.network(torch.as_tensor(matrix(model.preprocess, features)))
        return torch.softmax(logits, dim=1).numpy()


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
    """The network with a softmax (``torch.onnx``) behind the preprocessing's graph."""
    example = torch.zeros(2, model.network[0].in_features)
    network_graph = exported(model.network, example, "features")
    return behind_preprocessing(network_graph, model.preprocess, schema).SerializeToString()
