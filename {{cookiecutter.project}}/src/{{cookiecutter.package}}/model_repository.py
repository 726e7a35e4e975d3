"""A Triton model repository of the exported model: ``<name>/config.pbtxt``, ``<name>/1/``.

``export`` writes it next to the serving bundle. The configuration is read off the ONNX
graph's own signature, so Triton's onnxruntime backend serves the model under the same tensor
names, types and shapes as the project's Open Inference Protocol routes: the same client works
with both. Batching, instances and threads are written out instead of left to Triton's
auto-complete, whose defaults (two CPU instances, onnxruntime's default threading) are much
slower on CPU.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from .serve.open_inference import VERSION

TYPES = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.STRING: "TYPE_STRING",
}
CONFIG_FILE = "config.pbtxt"
MAX_QUEUE_DELAY_MICROSECONDS = 100  # how long a request may wait to share a batch


def _tensor(value: onnx.ValueInfoProto) -> str:
    """One tensor entry; the batch dimension is Triton's, so ``dims`` lists the others."""
    tensor = value.type.tensor_type
    dims = [dim.dim_value for dim in tensor.shape.dim[1:]]
    entry = f'name: "{value.name}" data_type: {TYPES[tensor.elem_type]}'
    if dims:
        return entry + f" dims: [ {', '.join(map(str, dims))} ]"
    # A per-row scalar (the label): Triton wants at least one dimension, reshaped away.
    return entry + " dims: [ 1 ] reshape: { shape: [ ] }"


def config(model: onnx.ModelProto, name: str, max_batch_size: int) -> str:
    """The ``config.pbtxt`` of ``model`` served as ``name``."""
    graph = model.graph

    def section(kind: str, values: list[onnx.ValueInfoProto]) -> str:
        entries = ",\n".join("  { " + _tensor(value) + " }" for value in values)
        return f"{kind} [\n{entries}\n]"

    return "\n".join(
        [
            f'name: "{name}"',
            'platform: "onnxruntime_onnx"',
            f"max_batch_size: {max_batch_size}",
            section("input", list(graph.input)),
            section("output", list(graph.output)),
            "dynamic_batching { max_queue_delay_microseconds: "
            + str(MAX_QUEUE_DELAY_MICROSECONDS)
            + " }",
            "instance_group [ { count: 1 kind: KIND_CPU } ]",
            'parameters { key: "intra_op_thread_count" value: { string_value: "1" } }',
            'parameters { key: "inter_op_thread_count" value: { string_value: "1" } }',
            "",
        ]
    )


def write(folder: Path, onnx_bytes: bytes, name: str, max_batch_size: int) -> None:
    """Write the repository for one model into the empty ``folder``."""
    model = onnx.load_from_string(onnx_bytes)
    (folder / name / VERSION).mkdir(parents=True)
    (folder / name / VERSION / "model.onnx").write_bytes(onnx_bytes)
    (folder / name / CONFIG_FILE).write_text(config(model, name, max_batch_size), encoding="utf-8")
