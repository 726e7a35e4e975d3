"""The real server (uvicorn + onnxruntime) in a subprocess: predictions, probes, and bad requests.

Every malformed request must get a 4xx with detail, never a 500, and the server must keep
answering good requests afterwards. Requests are built from the bundle's example rows and
the schema, so the cases follow your data.
"""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package }}.config import Paths
from {{ cookiecutter.package }}.files import read_json
from {{ cookiecutter.package }}.schema import CategoryColumn, NumericColumn
from {{ cookiecutter.package }}.serve.bundle import EXAMPLE_FILE
from {{ cookiecutter.package }}.serve.model import OnnxModel
from {{ cookiecutter.package }}.serve.settings import ServeSettings
from {{ cookiecutter.package }}.smoke import SmokeTestError, smoke_test

from .conftest import MAX_BODY, MAX_ROWS, SCHEMA, Client
from .test_data import beyond, first

Row = dict[str, Any]


@pytest.fixture(scope="module")
def row(example: dict[str, Any]) -> Row:
    return example["rows"][0]


def test_probes_and_version(server: Client, model: OnnxModel) -> None:
    assert server.call("GET", "/health") == (200, {"status": "ok"})
    assert server.call("GET", "/ready") == (200, {"status": "ready"})
    status, version = server.call("GET", "/version")
    assert status == 200
    assert version["model_sha256"] == model.sha256
    assert version["git_sha"] == "abc1234"


def assert_same_predictions(answers: list[dict], rows: list[Row], model: OnnxModel) -> None:
    expected = model.predict_rows(rows).to_json(model.classes)
    assert [got["label"] for got in answers] == [want["label"] for want in expected]
    for got, want in zip(answers, expected, strict=True):
        for cls, probability in want["probabilities"].items():
            assert math.isclose(got["probabilities"][cls], probability, abs_tol=1e-7)
        assert math.isclose(sum(got["probabilities"].values()), 1.0, abs_tol=1e-5)


def test_prediction_matches_onnx_model(
    server: Client, model: OnnxModel, example: dict[str, Any]
) -> None:
    status, body = server.predict({"rows": example["rows"]})
    assert status == 200
    assert body["model_sha256"] == model.sha256
    assert_same_predictions(body["predictions"], example["rows"], model)


def test_smoke_test_passes_against_the_server(server: Client, paths: Paths) -> None:
    example = paths.bundle / EXAMPLE_FILE
    result = smoke_test(f"http://127.0.0.1:{server.port}", example, ServeSettings().model_name)
    assert result["bad_request"]["status"] == 422
    labels = [one["label"] for one in read_json(example)["predictions"]]
    assert [one["label"] for one in result["good_request"]["predictions"]] == labels
    assert result["v2_request"] == {"status": 200, "labels": labels}
    assert result["server"] == "this project's"
    dropped = next(iter(read_json(example)["rows"][0]))  # the smoke test leaves out the first
    assert result["v2_bad_request"] == {"status": 400, "error": f"missing inputs: {dropped}"}


def test_smoke_test_fails_on_a_server_answering_other_predictions(
    server: Client, paths: Paths, tmp_path: Path
) -> None:
    """The smoke test is a gate: an example whose expected label is wrong must fail it."""
    case = read_json(paths.bundle / EXAMPLE_FILE)
    case["predictions"][0]["label"] = next(
        cls for cls in SCHEMA.target.classes if cls != case["predictions"][0]["label"]
    )
    (tmp_path / EXAMPLE_FILE).write_text(json.dumps(case))
    name = ServeSettings().model_name
    with pytest.raises(SmokeTestError, match=f"/v2/models/{name}/infer: row 0 got label"):
        smoke_test(f"http://127.0.0.1:{server.port}", tmp_path / EXAMPLE_FILE, name)


def test_concurrent_clients_each_get_their_own_prediction(
    server: Client, model: OnnxModel, rows: list[Row]
) -> None:
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda one: server.predict({"rows": [one]}), rows))
    assert [status for status, _ in answers] == [200] * len(rows)
    assert_same_predictions([answer["predictions"][0] for _, answer in answers], rows, model)


JSON_HEADERS = {"Content-Type": "application/json"}
Request = tuple[str, str, bytes | None, dict[str, str], int, str]


def post(body: bytes, status: int, named: str) -> Request:
    return ("POST", "/predict", body, JSON_HEADERS, status, named)


def rows_with(row: Row, column: str, value: object) -> bytes:
    return json.dumps({"rows": [{**row, column: value}]}).encode()


def raw_value(row: Row, column: str, literal: str) -> bytes:
    """A row whose ``column`` holds a bare JSON token (NaN, Infinity) json.dumps cannot write."""
    return json.dumps({"rows": [{**row, column: "@@"}]}).replace('"@@"', literal).encode()


NUMERIC = first(NumericColumn) or SCHEMA.features[0]
INTEGER = first(NumericColumn, type="integer")
BOUNDED = first(NumericColumn, max=...)
CATEGORY = first(CategoryColumn)
FEATURE = SCHEMA.features[0]

# id -> request built from a good row: (method, path, body, headers, status, named in detail)
MALFORMED: dict[str, Callable[[Row], Request]] = {
    "not json": lambda row: post(b"{rows: nope", 400, "json_invalid"),
    "wrong content type": lambda row: (
        "POST",
        "/predict",
        json.dumps({"rows": [row]}).encode(),
        {"Content-Type": "text/plain"},
        415,
        "application/json",
    ),
    "empty body": lambda row: post(b"", 400, "json_invalid"),
    "array body": lambda row: post(b"[1, 2]", 422, "dict_type"),
    "no rows key": lambda row: post(b'{"data": []}', 422, "rows"),
    "empty batch": lambda row: post(b'{"rows": []}', 422, "too_short"),
    "over-size batch": lambda row: post(
        json.dumps({"rows": [row] * (MAX_ROWS + 1)}).encode(), 422, "too_long"
    ),
    "missing field": lambda row: post(
        json.dumps({"rows": [{k: v for k, v in row.items() if k != FEATURE}]}).encode(),
        422,
        FEATURE,
    ),
    "extra field": lambda row: post(rows_with(row, "undeclared_zz", 1), 422, "undeclared_zz"),
    "string for number": lambda row: post(rows_with(row, NUMERIC, "41"), 422, NUMERIC),
    "boolean for number": lambda row: post(rows_with(row, NUMERIC, True), 422, NUMERIC),
    "null value": lambda row: post(rows_with(row, FEATURE, None), 422, FEATURE),
    "NaN": lambda row: post(raw_value(row, NUMERIC, "NaN"), 422, NUMERIC),
    "Infinity": lambda row: post(raw_value(row, NUMERIC, "Infinity"), 422, NUMERIC),
    "oversized body": lambda row: post(
        json.dumps({"rows": [row], "pad": "x" * MAX_BODY}).encode(), 413, "bytes"
    ),
    "wrong method": lambda row: ("GET", "/predict", None, {}, 405, "POST"),
    "unknown route": lambda row: ("GET", "/nope", None, {}, 404, "/predict"),
}
if INTEGER:
    MALFORMED["fraction for integer"] = lambda row: post(rows_with(row, INTEGER, 1.5), 422, INTEGER)
if BOUNDED:
    MALFORMED["out of range"] = lambda row: post(
        rows_with(row, BOUNDED, beyond(BOUNDED, "max")), 422, "less_than_equal"
    )
if CATEGORY:
    MALFORMED["unknown category"] = lambda row: post(
        rows_with(row, CATEGORY, "zz-unseen"), 422, CATEGORY
    )


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_request_gets_4xx_with_detail_and_server_keeps_serving(
    server: Client, row: Row, case: str
) -> None:
    method, path, body, headers, expected_status, named = MALFORMED[case](row)
    status, answer = server.call(method, path, body, headers)
    assert status == expected_status
    assert named in json.dumps(answer["detail"])
    assert server.predict({"rows": [row]})[0] == 200


def test_metrics_count_requests_by_status(server: Client, row: Row) -> None:
    def counts() -> dict[str, float]:
        status, text = server.call("GET", "/metrics")
        assert status == 200
        assert "model_ready 1" in text
        return {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in text.splitlines()
            if not line.startswith("#")
        }

    before = counts()
    server.predict({"rows": [{**row, FEATURE: None}]})
    server.predict({"rows": [row, row]})
    after = counts()

    def grew(key: str) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert grew('http_requests_total{route="/predict",status="422"}') == 1
    assert grew('http_requests_total{route="/predict",status="200"}') == 1
    assert grew("prediction_rows_total") == 2
    assert after['prediction_seconds_bucket{le="+Inf"}'] == after["prediction_seconds_count"]


def test_headers_trickled_too_slowly_get_a_408_and_the_connection_closed(server: Client) -> None:
    """A client sending half a request and stalling (slowloris) cannot hold the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: app")
        started = time.monotonic()
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"connection: close" in answer
    assert time.monotonic() - started < 5
    assert server.call("GET", "/health")[0] == 200
