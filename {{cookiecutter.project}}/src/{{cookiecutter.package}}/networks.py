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
from onnx import compose, helper, numpy_helper
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import train_test_split

from .schema import Schema
from .tabular import convert, preprocessor

# The ONNX opset of networks joined to the preprocessing (both graphs must share it).
OPSET = 18


class NetworkParams(BaseModel):
    """The ``train`` section of ``params.yaml`` for a multilayer perceptron."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hidden: list[PositiveInt] = Field(min_length=1)
    dropout: float = Field(ge=0, lt=1)
    learning_rate: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    batch_size: PositiveInt
    max_epochs: PositiveInt
    patience: PositiveInt  # epochs without a better validation loss before training stops
    validation_fraction: float = Field(gt=0, lt=0.5)


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
    classes = np.asarray(schema.target.classes, dtype=np.int64)
    graph.initializer.append(numpy_helper.from_array(classes, "classes"))
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
    return joined


def canonical_names(graph: onnx.GraphProto) -> None:
    """Name the graph's nodes, weights, intermediate tensors and symbolic dimensions by position.

    Exporters derive names from counters of the process: the framework's name scopes count
    the models built or called (TensorFlow: ``mlp_1/hidden_1_1/MatMul``), tf2onnx numbers
    unknown dimensions (``unk__7``), doc strings name traced functions and torch.onnx's node
    metadata holds stack traces with absolute paths. The exported bytes must depend on the
    model only. Inputs and outputs keep their names; the batch dimension is called ``rows``.
    (Networks with subgraphs, such as ``If`` or ``Loop``, would need the same inside them.)
    """
    graph.doc_string = ""  # tf2onnx: "converted from __inference_<lambda>_6552"
    kept = {value.name for value in [*graph.input, *graph.output]}
    renamed: dict[str, str] = {}
    for number, weight in enumerate(graph.initializer):
        renamed[weight.name] = weight.name = f"network.weight{number}"
    for number, node in enumerate(graph.node):
        node.name, node.doc_string = f"network.node{number}", ""
        del node.metadata_props[:]  # torch.onnx: stack traces, with the source's absolute path
        for index, name in enumerate(node.output):
            if name and name not in kept:
                renamed[name] = f"network.node{number}.{index}"
    for node in graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [renamed.get(name, name) for name in node.output]
    for value in graph.value_info:
        value.name = renamed.get(value.name, value.name)
    for value in [*graph.input, *graph.output, *graph.value_info]:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.HasField("dim_param"):
                dim.dim_param = "rows" if axis == 0 else f"dim{axis}"
