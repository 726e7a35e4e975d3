"""What every network's ONNX export ends with, whatever the framework and the task.

Names that depend on the model only (so the same model always serializes to the same
bytes), and the ``label`` output beside ``probabilities``: the contract the serving app, the
parity gate and Triton's configuration read.
"""

from __future__ import annotations

import copy

import numpy as np
import onnx
from onnx import helper, numpy_helper

# The ONNX opset of exported networks (a graph joined to the preprocessing's must share it).
OPSET = 18


def labelled(model: onnx.ModelProto, classes: list[int]) -> onnx.ModelProto:
    """Add ``label`` (int64, the most probable of ``classes``) before the ``probabilities``.

    ``model``'s one output is the probabilities, one column per class in ``classes`` order.
    """
    graph = model.graph
    graph.initializer.append(numpy_helper.from_array(np.asarray(classes, np.int64), "classes"))
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
    onnx.checker.check_model(model, full_check=True)
    return model


def probabilities_out(model: onnx.ModelProto) -> None:
    """Rename the graph's one output, whatever a converter called it, to ``probabilities``."""
    produced = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = ["probabilities" if name == produced else name for name in node.output]
    model.graph.output[0].name = "probabilities"


def canonical_names(graph: onnx.GraphProto) -> None:
    """Name the graph's nodes, weights, intermediate tensors and symbolic dimensions by position.

    Exporters derive names from counters of the process: the framework's name scopes count
    the models built or called (TensorFlow: ``mlp_1/hidden_1_1/MatMul``), tf2onnx numbers
    unknown dimensions (``unk__7``) and orders weights by hashing, doc strings name traced
    functions and torch.onnx's node metadata holds stack traces with absolute paths. The
    exported bytes must depend on the model only. Weights are put in the order the nodes
    read them; inputs and outputs keep their names; the batch dimension is called ``rows``.
    (Networks with subgraphs, such as ``If`` or ``Loop``, would need the same inside them.)
    """
    graph.doc_string = ""  # tf2onnx: "converted from __inference_<lambda>_6552"
    kept = {value.name for value in [*graph.input, *graph.output]}
    # Weights in the order the nodes first read them: tf2onnx's order follows hashing.
    first_read: dict[str, tuple[int, int]] = {}
    for number, node in enumerate(graph.node):
        for index, name in enumerate(node.input):
            first_read.setdefault(name, (number, index))
    unread = (len(graph.node), 0)
    weights = sorted(graph.initializer, key=lambda weight: first_read.get(weight.name, unread))
    weights = [copy.deepcopy(weight) for weight in weights]
    del graph.initializer[:]
    graph.initializer.extend(weights)
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
