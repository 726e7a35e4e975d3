"""Serve an exported Triton model repository with a real tritonserver (run in .venv/interop).

Usage: triton_server.py REPOSITORY MODEL HTTP_PORT GRPC_PORT METRICS_PORT. nvidia-pytriton
bundles tritonserver 2.51 with the python backend only, so the model runs here through
onnxruntime inside that backend. What this checks of the production setup (the onnxruntime
backend): ``config.pbtxt`` parses with Triton's own ``model_config_pb2``, its tensors match
the ONNX graph, and the server binds exactly those tensors and batching. What it cannot:
the onnxruntime backend itself, and the ``reshape`` of the per-row label (pytriton returns it
as ``[rows, 1]``, the backend as ``[rows]``).
"""

from __future__ import annotations

import json
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from google.protobuf import text_format
from google.protobuf.json_format import MessageToDict
from tritonclient.grpc import model_config_pb2

# tritonserver links libpython: its folder must be on the loader path before it starts.
os.environ["LD_LIBRARY_PATH"] = ":".join(
    filter(None, [sysconfig.get_config_var("LIBDIR"), os.environ.get("LD_LIBRARY_PATH")])
)

from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

NUMPY = {"TYPE_FP32": np.float32, "TYPE_INT64": np.int64, "TYPE_STRING": np.bytes_}
ONNX = {
    "TYPE_FP32": "tensor(float)",
    "TYPE_INT64": "tensor(int64)",
    "TYPE_STRING": "tensor(string)",
}


def checked_config(model_dir: Path, session: ort.InferenceSession) -> Any:
    """Parse config.pbtxt with Triton's schema and check it against the ONNX signature."""
    config = text_format.Parse(
        (model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig()
    )
    for declared, actual in (
        (config.input, session.get_inputs()),
        (config.output, session.get_outputs()),
    ):
        names = [(t.name, ONNX[model_config_pb2.DataType.Name(t.data_type)]) for t in declared]
        if names != [(t.name, t.type) for t in actual]:
            sys.exit(f"config.pbtxt tensors {names} differ from the ONNX graph's")
    return config


def main(repository: Path, name: str, http: int, grpc: int, metrics: int) -> None:
    model_dir = repository / name
    session = ort.InferenceSession(
        str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    config = checked_config(model_dir, session)
    print(json.dumps(MessageToDict(config)), flush=True)

    def tensors(declared: Any) -> list[Tensor]:
        return [
            Tensor(
                name=t.name,
                dtype=NUMPY[model_config_pb2.DataType.Name(t.data_type)],
                shape=tuple(t.dims),
            )
            for t in declared
        ]

    @batch
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        feeds = {
            key: value.astype(str) if value.dtype == object else value
            for key, value in inputs.items()
        }
        label, probabilities = session.run(None, feeds)
        return {"label": label.reshape(-1, 1), "probabilities": probabilities}

    delay = config.dynamic_batching.max_queue_delay_microseconds
    settings = TritonConfig(
        http_port=http, grpc_port=grpc, metrics_port=metrics, exit_on_error=True
    )
    with Triton(config=settings) as triton:
        triton.bind(
            model_name=name,
            infer_func=infer,
            inputs=tensors(config.input),
            outputs=tensors(config.output),
            config=ModelConfig(
                max_batch_size=config.max_batch_size,
                batcher=DynamicBatcher(max_queue_delay_microseconds=delay),
            ),
        )
        triton.serve()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], *map(int, sys.argv[3:6]))
