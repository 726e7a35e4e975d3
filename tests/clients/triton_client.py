"""NVIDIA's tritonclient against a server of the generated project (run in .venv/interop).

Usage: triton_client.py HOST:PORT MODEL EXAMPLE_JSON. Sends the example rows as v2 tensors,
JSON and binary, and three requests the server must refuse; prints what came back as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException


def inputs(
    metadata: dict[str, Any], rows: list[dict[str, Any]], binary: bool
) -> list[triton.InferInput]:
    """One [rows, 1] input per tensor the server's metadata lists."""
    built = []
    for tensor in metadata["inputs"]:
        values = [row[tensor["name"]] for row in rows]
        dtype = np.object_ if tensor["datatype"] == "BYTES" else np.float32
        array = np.asarray(values, dtype=dtype).reshape(-1, 1)
        one = triton.InferInput(tensor["name"], list(array.shape), tensor["datatype"])
        one.set_data_from_numpy(array, binary_data=binary)
        built.append(one)
    return built


def refused(call: Any) -> dict[str, str]:
    try:
        call()
    except InferenceServerException as error:
        return {"status": str(error.status()), "message": error.message()}
    return {"status": "200", "message": "accepted"}


def main(url: str, model: str, example: Path) -> None:
    client = triton.InferenceServerClient(url)
    rows = json.loads(example.read_text())["rows"]
    metadata = client.get_model_metadata(model)
    report: dict[str, Any] = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "metadata": metadata,
    }
    for binary in (False, True):
        outputs = [
            triton.InferRequestedOutput(name, binary_data=binary)
            for name in ("label", "probabilities")
        ]
        tensors = inputs(metadata, rows, binary)
        result = client.infer(model, tensors, outputs=outputs, request_id="r1")
        report["binary" if binary else "json"] = {
            "labels": result.as_numpy("label").tolist(),
            "probabilities": result.as_numpy("probabilities").tolist(),
            "id": result.get_response()["id"],
        }
    first = metadata["inputs"][0]["name"]
    number = next(t["name"] for t in metadata["inputs"] if t["datatype"] == "FP32")

    def wrong_shape() -> None:
        tensors = inputs(metadata, rows, False)
        wide = triton.InferInput(first, [len(rows), 2], tensors[0].datatype())
        column = [[row[first]] * 2 for row in rows]
        dtype = np.object_ if tensors[0].datatype() == "BYTES" else np.float32
        wide.set_data_from_numpy(np.asarray(column, dtype=dtype), binary_data=False)
        client.infer(model, [wide, *tensors[1:]])

    def wrong_datatype() -> None:
        tensors = [t for t in inputs(metadata, rows, False) if t.name() != number]
        wrong = triton.InferInput(number, [len(rows), 1], "INT64")
        wrong.set_data_from_numpy(np.ones((len(rows), 1), dtype=np.int64), binary_data=False)
        client.infer(model, [*tensors, wrong])

    report["errors"] = {
        "wrong shape": refused(wrong_shape),
        "wrong datatype": refused(wrong_datatype),
        "unknown model": refused(lambda: client.infer("zz-unknown", inputs(metadata, rows, False))),
    }
    report["errors"]["wrong shape"]["input"] = first
    report["errors"]["wrong datatype"]["input"] = number
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
