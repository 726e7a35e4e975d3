"""What the neural-network frameworks share on tabular data.

Their training inputs (a stratified validation split, the preprocessing fitted on the rest,
float32 matrices and class indices), the ``train`` parameters of a multilayer perceptron,
and the export that puts the network's ONNX graph behind the preprocessing's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import pandas as pd
from onnx import compose
from pydantic import Field, PositiveInt
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import train_test_split

from .config import LoopParams
from .onnx_graph import OPSET, canonical_names, labelled
from .schema import Schema
from .tabular import convert, preprocessor


class NetworkParams(LoopParams):
    """The ``train`` section of ``params.yaml`` for a multilayer perceptron."""

    hidden: list[PositiveInt] = Field(min_length=1)
    dropout: float = Field(ge=0, lt=1)


@dataclass(frozen=True)
class TrainingArrays:
    """What a network trains on.

    The fitted preprocessing, and float32 matrices with class indices (positions in
    ``schema.target.classes``) for the fitting and the validation rows.
    """

    preprocess: ColumnTransformer
    x_fit: np.ndarray
    y_fit: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def training_arrays(
    features: pd.DataFrame, target: pd.Series, schema: Schema, validation: float, seed: int
) -> TrainingArrays:
    """Split off a stratified validation share, fit the preprocessing on the rest only."""
    fit_rows, val_rows, fit_target, val_target = train_test_split(
        features, target, test_size=validation, random_state=seed, stratify=target
    )
    preprocess = preprocessor(schema).fit(fit_rows)
    index = {cls: position for position, cls in enumerate(schema.target.classes)}
    return TrainingArrays(
        preprocess,
        matrix(preprocess, fit_rows),
        fit_target.map(index).to_numpy(dtype=np.int64),
        matrix(preprocess, val_rows),
        val_target.map(index).to_numpy(dtype=np.int64),
    )


def matrix(preprocess: ColumnTransformer, features: pd.DataFrame) -> np.ndarray:
    """The network's input for raw feature rows."""
    return np.asarray(preprocess.transform(features), dtype=np.float32)


def behind_preprocessing(
    network: onnx.ModelProto, preprocess: ColumnTransformer, schema: Schema
) -> onnx.ModelProto:
    """One graph: the fitted preprocessing, then ``network``, then the label.

    ``network`` maps a ``features`` matrix to ``probabilities`` (opset :data:`OPSET`). The
    result takes one input per feature and outputs ``label`` (int64, the most probable class)
    and ``probabilities``, like every framework's export, so serving needs no training
    library.
    """
    front = convert(preprocess, schema, opset=OPSET)
    front.ir_version = network.ir_version
    canonical_names(network.graph)
    # Converters declare domains they do not use (tf2onnx: ai.onnx.ml 2), which merging
    # would take for a conflict with the preprocessing's version.
    used = {node.domain for node in network.graph.node} | {""}
    declared = [opset for opset in network.opset_import if opset.domain in used]
    del network.opset_import[:]
    network.opset_import.extend(declared)
    joined = compose.merge_models(front, network, io_map=[(front.graph.output[0].name, "features")])
    graph = joined.graph
    graph.name, graph.doc_string = "model", "preprocessing, network, label"
    return labelled(joined, schema.target.classes)
