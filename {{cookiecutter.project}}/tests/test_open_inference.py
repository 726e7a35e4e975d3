"""The Open Inference Protocol (KServe v2) routes of the real server: probes, metadata, infer.

Requests are built from the bundle's example rows and the schema, as JSON tensors and as
binary tensor data; every mistake must get a 4xx whose ``error`` names the input at fault.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from {{ cookiecutter.package }}.schema import CategoryColumn, NumericColumn
from {{ cookiecutter.package }}.serve.model import OnnxModel
from {{ cookiecutter.package }}.serve.settings import ServeSettings

from .conftest import MAX_ROWS, SCHEMA, Client
from .test_data import beyond, first

NAME = ServeSettings().model_name
INFER = f"/v2/models/{NAME}/infer"
Row = dict[str, Any]
Tensor = dict[str, Any]


def tensors(rows: list[Row]) -> list[Tensor]:
    """One JSON input per feature, shaped ``[rows, 1]`` like the ONNX model's inputs."""
    return [
        {
            "name": name,
            "datatype": "BYTES" if isinstance(column, CategoryColumn) else "FP32",
            "shape": [len(rows), 1],
            "data": [row[name] for row in rows],
        }
        for name, column in SCHEMA.columns.items()
    ]


def binary(rows: list[Row]) -> tuple[bytes, int]:
    """The same inputs as binary tensor data, asking for binary outputs: body, header length."""
    inputs, blobs = [], []
    for tensor in tensors(rows):
        values = tensor.pop("data")
        if tensor["datatype"] == "FP32":
            blob = np.asarray(values, dtype="<f4").tobytes()
        else:
            blob = b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
        inputs.append({**tensor, "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    header = json.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}}).encode()
    return header + b"".join(blobs), len(header)


def infer(server: Client, payload: Any) -> tuple[int, Any]:
    return server.call("POST", INFER, json.dumps(payload).encode())


def test_probes_and_metadata_describe_the_model(server: Client, model: OnnxModel) -> None:
    assert server.call("GET", "/v2/health/live")[0] == 200
    assert server.call("GET", "/v2/health/ready")[0] == 200
    assert server.call("GET", f"/v2/models/{NAME}/ready")[0] == 200
    assert server.call("GET", f"/v2/models/{NAME}/versions/1/ready")[0] == 200
    assert server.call("GET", "/v2")[1]["extensions"] == ["binary_tensor_data"]
    status, metadata = server.call("GET", f"/v2/models/{NAME}")
    assert status == 200
    assert metadata["name"] == NAME
    assert metadata["platform"] == "onnxruntime_onnx"
    assert [(i["name"], i["datatype"], i["shape"]) for i in metadata["inputs"]] == [
        (name, "BYTES" if isinstance(column, CategoryColumn) else "FP32", [-1, 1])
        for name, column in SCHEMA.columns.items()
    ]
    assert metadata["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(SCHEMA.target.classes)]},
    ]
    assert metadata["parameters"] == {
        "classes": SCHEMA.target.classes,
        "model_sha256": model.sha256,
    }


def assert_outputs_match(
    model: OnnxModel, rows: list[Row], labels: list[int], probabilities: np.ndarray
) -> None:
    reference = model.predict_rows(rows)
    assert labels == reference.labels.tolist()
    assert probabilities.shape == reference.probabilities.shape
    assert np.abs(probabilities - reference.probabilities).max() <= 1e-7


def test_json_tensors_get_the_predictions_of_predict(
    server: Client, model: OnnxModel, example: dict[str, Any]
) -> None:
    rows = example["rows"]
    status, answer = infer(server, {"id": "req-7", "inputs": tensors(rows)})
    assert status == 200
    assert (answer["model_name"], answer["model_version"], answer["id"]) == (NAME, "1", "req-7")
    assert answer["parameters"] == {"model_sha256": model.sha256}
    label, probabilities = answer["outputs"]
    assert (label["name"], label["datatype"], label["shape"]) == ("label", "INT64", [len(rows)])
    classes = len(SCHEMA.target.classes)
    assert (probabilities["datatype"], probabilities["shape"]) == ("FP32", [len(rows), classes])
    matrix = np.asarray(probabilities["data"]).reshape(len(rows), classes)
    assert_outputs_match(model, rows, label["data"], matrix)
    by_predict = server.predict({"rows": rows})[1]["predictions"]
    assert label["data"] == [one["label"] for one in by_predict]


def test_only_the_requested_outputs_are_returned(server: Client, example: dict[str, Any]) -> None:
    payload = {"inputs": tensors(example["rows"]), "outputs": [{"name": "label"}]}
    status, answer = infer(server, payload)
    assert status == 200
    assert [output["name"] for output in answer["outputs"]] == ["label"]


def test_binary_tensor_data_in_and_out(
    server: Client, model: OnnxModel, example: dict[str, Any]
) -> None:
    rows = example["rows"]
    body, header_length = binary(rows)
    status, raw, headers = server.exchange(
        "POST", INFER, body, {"Inference-Header-Content-Length": str(header_length)}
    )
    assert status == 200
    split = int(headers["inference-header-content-length"])
    answer = json.loads(raw[:split])
    sizes = [output["parameters"]["binary_data_size"] for output in answer["outputs"]]
    classes = len(SCHEMA.target.classes)
    assert sizes == [8 * len(rows), 4 * len(rows) * classes]
    assert split + sum(sizes) == len(raw)
    labels = np.frombuffer(raw[split : split + sizes[0]], dtype="<i8").tolist()
    matrix = np.frombuffer(raw[split + sizes[0] :], dtype="<f4").reshape(len(rows), classes)
    assert_outputs_match(model, rows, labels, matrix)


NUMERIC = first(NumericColumn) or SCHEMA.features[0]
INTEGER = first(NumericColumn, type="integer")
BOUNDED = first(NumericColumn, max=...)
LOW = first(NumericColumn, min=...)
CATEGORY = first(CategoryColumn)
FEATURE = SCHEMA.features[0]
Case = tuple[str, str, bytes, dict[str, str], int, str]


def changed(rows: list[Row], input_name: str, **fields: Any) -> bytes:
    """The rows' tensors with the fields of input ``input_name`` replaced."""
    inputs = [{**t, **fields} if t["name"] == input_name else t for t in tensors(rows)]
    return json.dumps({"inputs": inputs}).encode()


def post(body: bytes, status: int, named: str, headers: dict[str, str] | None = None) -> Case:
    return ("POST", INFER, body, headers or {}, status, named)


def without(rows: list[Row], name: str) -> bytes:
    return json.dumps({"inputs": [t for t in tensors(rows) if t["name"] != name]}).encode()


def cut_binary(rows: list[Row]) -> Case:
    body, header_length = binary(rows)
    return post(
        body[:-1], 400, "runs past", {"Inference-Header-Content-Length": str(header_length)}
    )


def padded_binary(rows: list[Row]) -> Case:
    body, header_length = binary(rows)
    return post(
        body + b"\0",
        400,
        "belong to no input",
        {"Inference-Header-Content-Length": str(header_length)},
    )


# id -> request built from good rows: (method, path, body, headers, status, named in error)
MALFORMED: dict[str, Callable[[list[Row]], Case]] = {
    "unknown model": lambda rows: (
        "POST",
        "/v2/models/zz-other/infer",
        changed(rows, FEATURE),
        {},
        404,
        "zz-other",
    ),
    "unknown version": lambda rows: (
        "GET",
        f"/v2/models/{NAME}/versions/9",
        None,
        {},
        404,
        "version '9'",
    ),
    "unknown model metadata": lambda rows: ("GET", "/v2/models/zz-other", None, {}, 404, NAME),
    "infer by GET": lambda rows: ("GET", INFER, None, {}, 405, "POST"),
    "not json": lambda rows: post(b"{inputs: nope", 400, "Invalid JSON"),
    "no inputs": lambda rows: post(b'{"inputs": []}', 400, "inputs"),
    "unknown field": lambda rows: post(b'{"inputs": [], "zz": 1}', 400, "zz"),
    "missing input": lambda rows: post(without(rows, FEATURE), 400, FEATURE),
    "unknown input": lambda rows: post(
        changed(rows, FEATURE, name="zz_undeclared"), 400, "zz_undeclared"
    ),
    "duplicate input": lambda rows: post(
        json.dumps({"inputs": tensors(rows) + tensors(rows)[:1]}).encode(), 400, FEATURE
    ),
    "wrong datatype": lambda rows: post(changed(rows, NUMERIC, datatype="INT64"), 400, NUMERIC),
    "wrong shape": lambda rows: post(changed(rows, FEATURE, shape=[len(rows), 2]), 400, FEATURE),
    "rows disagree": lambda rows: post(
        changed(rows, FEATURE, shape=[1, 1], data=[rows[0][FEATURE]]), 400, "disagree"
    ),
    "too few values": lambda rows: post(
        changed(rows, FEATURE, data=[row[FEATURE] for row in rows][:-1]), 400, FEATURE
    ),
    "string for number": lambda rows: post(
        changed(rows, NUMERIC, data=["41"] * len(rows)), 400, NUMERIC
    ),
    "boolean for number": lambda rows: post(
        changed(rows, NUMERIC, data=[True] * len(rows)), 400, NUMERIC
    ),
    "no data": lambda rows: post(changed(rows, FEATURE, data=None), 400, FEATURE),
    "too many rows": lambda rows: post(
        json.dumps({"inputs": tensors((rows * MAX_ROWS)[: MAX_ROWS + 1])}).encode(), 400, "rows"
    ),
    "unknown output": lambda rows: post(
        json.dumps({"inputs": tensors(rows), "outputs": [{"name": "zz_out"}]}).encode(),
        400,
        "outputs.0.name",
    ),
    "compressed body": lambda rows: post(
        changed(rows, FEATURE), 415, "compressed", {"Content-Encoding": "gzip"}
    ),
    "binary cut short": cut_binary,
    "binary with extra bytes": padded_binary,
    "header length beyond body": lambda rows: post(
        changed(rows, FEATURE),
        400,
        "Inference-Header-Content-Length",
        {"Inference-Header-Content-Length": "999999"},
    ),
}
if INTEGER:
    MALFORMED["fraction for integer"] = lambda rows: post(
        changed(rows, INTEGER, data=[1.5] * len(rows)), 400, INTEGER
    )
if BOUNDED:
    MALFORMED["out of range"] = lambda rows: post(
        changed(rows, BOUNDED, data=[beyond(BOUNDED, "max")] * len(rows)), 400, "less than or equal"
    )
if CATEGORY:
    MALFORMED["unknown category"] = lambda rows: post(
        changed(rows, CATEGORY, data=["zz-unseen"] * len(rows)), 400, CATEGORY
    )


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_request_gets_4xx_with_an_error_naming_the_fault(
    server: Client, example: dict[str, Any], case: str
) -> None:
    method, path, body, headers, expected_status, named = MALFORMED[case](example["rows"])
    status, answer = server.call(method, path, body, headers)
    assert status == expected_status
    assert named in answer["error"]
    assert infer(server, {"inputs": tensors(example["rows"])})[0] == 200


# Value faults, each in the second row: the binary data is checked in bulk, then element by
# element when the bulk check fails, so the error is the one the same JSON data gets (JSON
# has no NaN: that one gets its own message). Every schema has at least one of them.
VALUE_FAULTS: dict[str, tuple[str, Any]] = {}
if first(NumericColumn):
    VALUE_FAULTS["not a number"] = (NUMERIC, float("nan"))
if LOW:
    VALUE_FAULTS["below minimum"] = (LOW, beyond(LOW, "min"))
if BOUNDED:
    VALUE_FAULTS["above maximum"] = (BOUNDED, beyond(BOUNDED, "max"))
if INTEGER:
    VALUE_FAULTS["fraction for integer"] = (INTEGER, 1.5)
if CATEGORY:
    VALUE_FAULTS["unknown category"] = (CATEGORY, "zz-unseen")


def post_binary(server: Client, rows: list[Row]) -> tuple[int, Any]:
    body, header_length = binary(rows)
    headers = {"Inference-Header-Content-Length": str(header_length)}
    return server.call("POST", INFER, body, headers)


@pytest.mark.parametrize("fault", VALUE_FAULTS)
def test_binary_data_breaking_the_schema_is_refused_naming_the_element(
    server: Client, example: dict[str, Any], fault: str
) -> None:
    name, value = VALUE_FAULTS[fault]
    rows = [
        {**row, name: value} if index == 1 else row for index, row in enumerate(example["rows"])
    ]
    status, answer = post_binary(server, rows)
    assert status == 400
    assert answer["error"].startswith(f"input {name!r}: data[1]: ")
    if fault == "not a number":
        assert answer["error"].endswith("Input should be a finite number")
    else:
        assert (status, answer) == infer(server, {"inputs": tensors(rows)})


def counter(server: Client, series: str) -> float:
    text = server.call("GET", "/metrics")[1]
    found = [line.split()[-1] for line in text.splitlines() if line.startswith(f"{series} ")]
    return float(found[0]) if found else 0.0


def test_metrics_count_v2_routes_by_template(server: Client, example: dict[str, Any]) -> None:
    """Routes are counted by template: clients guessing model names add no new series."""
    series = [
        'http_requests_total{route="/v2/models/{name}",status="404"}',
        'http_requests_total{route="/v2/models/{name}/infer",status="200"}',
    ]
    before = [counter(server, one) for one in series]
    infer(server, {"inputs": tensors(example["rows"])})
    server.call("GET", "/v2/models/zz-one")
    server.call("GET", "/v2/models/zz-two")
    assert [counter(server, one) for one in series] == [before[0] + 2, before[1] + 1]
    assert 'route="/v2/models/zz' not in server.call("GET", "/metrics")[1]
