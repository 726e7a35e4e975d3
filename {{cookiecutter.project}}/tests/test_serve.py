"""The real server (uvicorn + onnxruntime) in a subprocess: predictions, probes, and bad requests.

Every malformed request must get a 4xx with detail, never a 500, and the server must keep
answering good requests afterwards.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package }}.serve.model import OnnxModel
from {{ cookiecutter.package }}.smoke import free_port, smoke_test

MAX_ROWS = 5
MAX_BODY = 4096
ROW = {
    "age": 41,
    "income": 62.5,
    "debt_ratio": 0.21,
    "credit_history_years": 12,
    "employment": "employed",
    "gender": "female",
}


class Client:
    def __init__(self, port: int) -> None:
        self.port = port

    def call(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            raw = response.read()
            kind = response.getheader("content-type", "")
            return response.status, json.loads(raw) if kind.startswith(
                "application/json"
            ) else raw.decode()
        finally:
            connection.close()

    def predict(self, payload: Any) -> tuple[int, Any]:
        return self.call(
            "POST", "/predict", json.dumps(payload).encode(), {"Content-Type": "application/json"}
        )


@pytest.fixture(scope="module")
def server(workspace: Path) -> Iterator[Client]:
    port = free_port()
    env = {
        **os.environ,
        "SERVE_PORT": str(port),
        "SERVE_MODEL_DIR": str(workspace / "models" / "serving"),
        "SERVE_MAX_BATCH_ROWS": str(MAX_ROWS),
        "SERVE_MAX_BODY_BYTES": str(MAX_BODY),
        "SERVE_GIT_SHA": "abc1234",
        "SERVE_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", f"{OnnxModel.__module__.split('.')[0]}.serve"], env=env
    )
    client = Client(port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if client.call("GET", "/ready")[0] == 200:
                break
        except OSError:
            time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("server never became ready")
    yield client
    process.send_signal(signal.SIGTERM)
    # uvicorn drains, then re-raises SIGTERM so supervisors see why it stopped.
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)


def test_probes_and_version(server: Client, workspace: Path) -> None:
    assert server.call("GET", "/health") == (200, {"status": "ok"})
    assert server.call("GET", "/ready") == (200, {"status": "ready"})
    status, version = server.call("GET", "/version")
    expected = OnnxModel.load(workspace / "models" / "serving").sha256
    assert status == 200
    assert version["model_sha256"] == expected
    assert version["git_sha"] == "abc1234"


def test_prediction_matches_onnx_model(server: Client, workspace: Path) -> None:
    rows = [ROW, {**ROW, "employment": "unemployed", "income": 8.0, "debt_ratio": 0.8}]
    status, body = server.predict({"rows": rows})
    assert status == 200
    model = OnnxModel.load(workspace / "models" / "serving")
    expected = model.predict_rows(rows).to_json(model.classes)
    assert [p["label"] for p in body["predictions"]] == [p["label"] for p in expected]
    for got, want in zip(body["predictions"], expected, strict=True):
        assert math.isclose(got["probabilities"]["1"], want["probabilities"]["1"], abs_tol=1e-7)
        assert math.isclose(sum(got["probabilities"].values()), 1.0, abs_tol=1e-5)
    assert body["predictions"][0]["label"] == 1
    assert body["predictions"][1]["label"] == 0


def test_smoke_test_passes_against_the_server(server: Client, workspace: Path) -> None:
    result = smoke_test(
        f"http://127.0.0.1:{server.port}", workspace / "models" / "serving" / "example.json"
    )
    assert result["bad_request"]["status"] == 422
    assert len(result["good_request"]["predictions"]) == 3


def test_concurrent_clients_each_get_their_own_prediction(server: Client, workspace: Path) -> None:
    rows = [{**ROW, "debt_ratio": round(0.035 * index, 3)} for index in range(24)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda row: server.predict({"rows": [row]}), rows))
    model = OnnxModel.load(workspace / "models" / "serving")
    expected = model.predict_rows(rows).to_json(model.classes)
    assert len({answer["predictions"][0]["label"] for _, answer in answers}) == 2
    for (status, answer), want in zip(answers, expected, strict=True):
        assert status == 200
        got = answer["predictions"][0]
        assert got["label"] == want["label"]
        assert math.isclose(got["probabilities"]["1"], want["probabilities"]["1"], abs_tol=1e-7)


JSON_HEADERS = {"Content-Type": "application/json"}
# (method, path, body, headers, expected status, a field or message the detail must name)
MALFORMED = {
    "not json": ("POST", "/predict", b"{rows: nope", JSON_HEADERS, 400, "json_invalid"),
    "wrong content type": (
        "POST",
        "/predict",
        json.dumps({"rows": [ROW]}).encode(),
        {"Content-Type": "text/plain"},
        415,
        "application/json",
    ),
    "empty body": ("POST", "/predict", b"", JSON_HEADERS, 400, "json_invalid"),
    "array body": ("POST", "/predict", b"[1, 2]", JSON_HEADERS, 422, "dict_type"),
    "no rows key": ("POST", "/predict", b'{"data": []}', JSON_HEADERS, 422, "rows"),
    "empty batch": ("POST", "/predict", b'{"rows": []}', JSON_HEADERS, 422, "too_short"),
    "over-size batch": (
        "POST",
        "/predict",
        json.dumps({"rows": [ROW] * (MAX_ROWS + 1)}).encode(),
        JSON_HEADERS,
        422,
        "too_long",
    ),
    "missing field": (
        "POST",
        "/predict",
        json.dumps({"rows": [{k: v for k, v in ROW.items() if k != "income"}]}).encode(),
        JSON_HEADERS,
        422,
        "income",
    ),
    "extra field": (
        "POST",
        "/predict",
        json.dumps({"rows": [{**ROW, "zip": "12345"}]}).encode(),
        JSON_HEADERS,
        422,
        "zip",
    ),
    "string for number": (
        "POST",
        "/predict",
        json.dumps({"rows": [{**ROW, "age": "41"}]}).encode(),
        JSON_HEADERS,
        422,
        "age",
    ),
    "fraction for integer": (
        "POST",
        "/predict",
        json.dumps({"rows": [{**ROW, "age": 41.5}]}).encode(),
        JSON_HEADERS,
        422,
        "age",
    ),
    "boolean for number": (
        "POST",
        "/predict",
        json.dumps({"rows": [{**ROW, "income": True}]}).encode(),
        JSON_HEADERS,
        422,
        "income",
    ),
    "null value": (
        "POST",
        "/predict",
        json.dumps({"rows": [{**ROW, "debt_ratio": None}]}).encode(),
        JSON_HEADERS,
        422,
        "debt_ratio",
    ),
    "NaN": (
        "POST",
        "/predict",
        b'{"rows": [' + json.dumps(ROW).replace("62.5", "NaN").encode() + b"]}",
        JSON_HEADERS,
        422,
        "income",
    ),
    "Infinity": (
        "POST",
        "/predict",
        b'{"rows": [' + json.dumps(ROW).replace("0.21", "Infinity").encode() + b"]}",
        JSON_HEADERS,
        422,
        "debt_ratio",
    ),
    "out of range": (
        "POST",
        "/predict",
        json.dumps({"rows": [{**ROW, "debt_ratio": 3.0}]}).encode(),
        JSON_HEADERS,
        422,
        "less_than_equal",
    ),
    "unknown category": (
        "POST",
        "/predict",
        json.dumps({"rows": [{**ROW, "employment": "student"}]}).encode(),
        JSON_HEADERS,
        422,
        "employment",
    ),
    "oversized body": (
        "POST",
        "/predict",
        json.dumps({"rows": [ROW], "pad": "x" * MAX_BODY}).encode(),
        JSON_HEADERS,
        413,
        "bytes",
    ),
    "wrong method": ("GET", "/predict", None, {}, 405, "POST"),
    "unknown route": ("GET", "/nope", None, {}, 404, "/predict"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_request_gets_4xx_with_detail_and_server_keeps_serving(
    server: Client, case: str
) -> None:
    method, path, body, headers, expected_status, named = MALFORMED[case]
    status, answer = server.call(method, path, body, headers)
    assert status == expected_status
    assert named in json.dumps(answer["detail"])
    assert server.predict({"rows": [ROW]})[0] == 200


def test_metrics_count_requests_by_status(server: Client) -> None:
    server.predict({"rows": [{**ROW, "age": "x"}]})
    server.predict({"rows": [ROW, ROW]})
    status, text = server.call("GET", "/metrics")
    assert status == 200
    assert "model_ready 1" in text
    counts = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if not line.startswith("#")
    }
    assert counts['http_requests_total{route="/predict",status="422"}'] >= 1
    assert counts['http_requests_total{route="/predict",status="200"}'] >= 1
    assert counts["prediction_rows_total"] >= 2
    assert counts['prediction_seconds_bucket{le="+Inf"}'] == counts["prediction_seconds_count"]
