"""No request can make the server answer 5xx, and errors stay small: property-based, in process.

Bodies are generated from the schema (rows with right, wrong and extreme values) and as
arbitrary JSON; each goes through the real app (ASGI calls, no network) and must get a 2xx
or a 4xx. Derandomized, so a failure reproduces on every run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from {{ cookiecutter.package }}.config import Paths
from {{ cookiecutter.package }}.schema import CategoryColumn, NumericColumn
from {{ cookiecutter.package }}.serve.app import ServingApp
from {{ cookiecutter.package }}.serve.batching import INLINE_ROWS
from {{ cookiecutter.package }}.serve.bundle import METADATA_FILE
from {{ cookiecutter.package }}.serve.settings import ServeSettings

from .conftest import SCHEMA, rebundle

MAX_ROWS = 5
ERROR_BODY_LIMIT = 16 * 1024


Receive = Callable[[], Awaitable[dict[str, Any]]]


async def answer(
    app: ServingApp, method: str, path: str, body: bytes = b"", receive: Receive | None = None
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One HTTP request through the ASGI app; returns status, headers and body."""
    sent: list[dict[str, Any]] = []

    async def whole_body() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(b"content-type", b"application/json")],
    }
    await app(scope, receive or whole_body, send)
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


def call(app: ServingApp, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """:func:`answer` on its own event loop; returns status and body."""
    status, _, content = asyncio.run(answer(app, method, path, body))
    return status, content


@pytest.fixture(scope="module")
def app(paths: Paths, tmp_path_factory: pytest.TempPathFactory) -> ServingApp:
    """The exported model served with every numeric column's range dropped from its schema.

    Unbounded columns are where extreme numbers reach the model, so the properties must hold
    for them whatever ranges your own schema declares.
    """
    metadata = json.loads((paths.bundle / METADATA_FILE).read_text())
    for column in metadata["schema"]["columns"].values():
        column.pop("min", None)
        column.pop("max", None)
    bundle = rebundle(paths, tmp_path_factory.mktemp("unbounded"), metadata)
    # A 1 MiB body limit, as an operator may set: large bodies must still get small answers.
    settings = ServeSettings(model_dir=bundle, max_batch_rows=MAX_ROWS, max_body_bytes=1 << 20)
    served = ServingApp(settings)
    served.load()
    assert served.model is not None, served.load_error
    return served


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
HUGE = st.integers(min_value=10**38, max_value=10**400) | st.integers(max_value=-(10**38))


def value(column: NumericColumn | CategoryColumn) -> st.SearchStrategy[Any]:
    """Right, wrong and extreme values for one column."""
    if isinstance(column, CategoryColumn):
        return st.sampled_from(column.categories) | st.text(max_size=8) | JSON
    return st.integers() | st.floats() | HUGE | st.text(max_size=8) | st.none() | st.booleans()


ROW = st.fixed_dictionaries(
    {name: value(column) for name, column in SCHEMA.columns.items()},
    optional={"undeclared_zz": JSON},
)
BODY = JSON | st.fixed_dictionaries({"rows": st.lists(ROW, max_size=MAX_ROWS + 2)})


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(body=BODY)
def test_no_request_body_gets_a_5xx(app: ServingApp, body: Any) -> None:
    status, answer = call(app, "POST", "/predict", json.dumps(body).encode())
    assert 200 <= status < 500, answer[:500]
    if status >= 400:
        assert len(answer) <= ERROR_BODY_LIMIT


def test_thousands_of_mistakes_get_a_small_answer(app: ServingApp, example: dict) -> None:
    row = {**example["rows"][0], **{f"unknown_{'k' * 200}_{index}": 1 for index in range(3000)}}
    status, answer = call(app, "POST", "/predict", json.dumps({"rows": [row]}).encode())
    assert status == 422
    assert len(answer) <= ERROR_BODY_LIMIT
    detail = json.loads(answer)["detail"]
    assert len(detail) == 11
    assert detail[-1] == {"loc": [], "msg": "2990 more errors not shown", "type": "too_many_errors"}
    assert all(len(part) <= 67 for item in detail for part in item["loc"] if isinstance(part, str))


def test_a_number_beyond_float32_is_a_422_not_a_500(app: ServingApp, example: dict) -> None:
    column = next(name for name, spec in SCHEMA.columns.items() if isinstance(spec, NumericColumn))
    row = {**example["rows"][0], column: 10**400}
    status, answer = call(app, "POST", "/predict", json.dumps({"rows": [row]}).encode())
    assert status == 422
    assert json.loads(answer)["detail"][0]["loc"] == ["rows", 0, column]


def test_an_unexpected_error_is_one_counted_500_without_a_traceback(
    app: ServingApp, example: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(feeds: Any) -> Any:
        raise RuntimeError("secret internals")

    counter = 'http_requests_total{route="/predict",status="500"}'

    def errors() -> float:
        text = call(app, "GET", "/metrics")[1].decode()
        return float(
            next((line.split()[1] for line in text.splitlines() if line.startswith(counter)), 0)
        )

    before = errors()
    monkeypatch.setattr(app.batcher.model, "predict", broken)
    status, answer = call(app, "POST", "/predict", json.dumps({"rows": example["rows"]}).encode())
    assert status == 500
    assert b"secret internals" not in answer
    assert b"Traceback" not in answer
    assert errors() == before + 1


def large_batch(example: dict) -> list[dict]:
    """Rows enough for a batch that runs on the inference thread, not on the event loop."""
    return (example["rows"] * (INLINE_ROWS + 1))[: INLINE_ROWS + 1]


def slow_app(paths: Paths, seconds: float, **settings: Any) -> ServingApp:
    """The exported model, each batch taking ``seconds`` on the inference thread."""
    served = ServingApp(ServeSettings(model_dir=paths.bundle, **settings))
    served.load()
    predict = served.batcher.model.predict

    def slowly(feeds: Any) -> Any:
        time.sleep(seconds)  # on the inference thread, like a heavy model
        return predict(feeds)

    served.batcher.model.predict = slowly  # type: ignore[method-assign]
    return served


def test_health_answers_while_a_large_batch_runs(paths: Paths, example: dict) -> None:
    """Liveness must not wait behind inference, or load gets healthy pods restarted."""
    served = slow_app(paths, 1.0)
    body = json.dumps({"rows": large_batch(example)}).encode()

    async def scenario() -> tuple[float, bool, bytes, int]:
        predicting = asyncio.create_task(answer(served, "POST", "/predict", body))
        await asyncio.sleep(0.1)  # the batch is on the inference thread now
        started = time.perf_counter()
        status, _, _ = await answer(served, "GET", "/health")
        elapsed = time.perf_counter() - started
        still_running = not predicting.done()
        metrics = (await answer(served, "GET", "/metrics"))[2]
        return elapsed, still_running, metrics, status if status != 200 else (await predicting)[0]

    elapsed, still_running, metrics, predicted = asyncio.run(scenario())
    assert still_running
    assert elapsed < 0.1
    assert b"\npredictions_in_flight 1\n" in metrics
    assert predicted == 200


def test_load_is_shed_with_retry_after_before_the_body_is_read(paths: Paths, example: dict) -> None:
    served = slow_app(paths, 0.5, max_in_flight=1)
    body = json.dumps({"rows": large_batch(example)}).encode()
    read: list[bool] = []

    async def counting() -> dict[str, Any]:
        read.append(True)
        return {"type": "http.request", "body": body, "more_body": False}

    async def scenario() -> tuple[tuple, tuple]:
        first = asyncio.create_task(answer(served, "POST", "/predict", body))
        await asyncio.sleep(0.05)
        second = await answer(served, "POST", "/predict", receive=counting)
        return await first, second

    (first_status, _, _), (status, headers, content) = asyncio.run(scenario())
    assert first_status == 200
    assert status == 503
    assert headers[b"retry-after"] == b"1"
    assert b"overloaded" in content
    assert read == []


def test_a_stalled_body_gets_a_408_and_the_connection_closed(paths: Paths) -> None:
    served = ServingApp(ServeSettings(model_dir=paths.bundle, body_timeout_seconds=0.3))
    served.load()

    async def stalled() -> dict[str, Any]:
        await asyncio.sleep(60)  # the client never sends the rest
        return {"type": "http.request", "body": b"", "more_body": False}

    started = time.perf_counter()
    status, headers, _ = asyncio.run(answer(served, "POST", "/predict", receive=stalled))
    assert status == 408
    assert headers[b"connection"] == b"close"
    assert time.perf_counter() - started < 5


def test_the_body_limit_is_sized_to_the_schema(paths: Paths, example: dict) -> None:
    rows = 5
    served = ServingApp(ServeSettings(model_dir=paths.bundle, max_batch_rows=rows))
    served.load()
    assert served.body_limit == SCHEMA.request_bytes(rows)
    full = json.dumps({"rows": (example["rows"] * rows)[:rows]}, indent=2).encode()
    assert len(full) < served.body_limit  # the largest valid request fits, pretty-printed
    assert call(served, "POST", "/predict", full)[0] == 200
    padded = json.dumps({"rows": example["rows"], "pad": " " * served.body_limit}).encode()
    assert call(served, "POST", "/predict", padded)[0] == 413
