"""Smoke-test a running server: ready in time, correct predictions, bad requests refused.

Any Open Inference Protocol server passes the same checks: ready on ``/v2/health/ready``, the
example rows predicted on ``/v2/models/<name>/infer``, a request missing an input refused. On
this project's own server (it answers ``/ready``) ``/predict`` is checked as well, so the same
smoke test, with no option, judges the project's server and a Triton serving the exported
model repository. Used by ``make demo``, the container build and after a rollout, against the
bundle's ``example.json`` (rows from the test split and the predictions export computed for
them).
"""

from __future__ import annotations

import json
import logging
import math
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
TOLERANCE = 1e-6


class SmokeTestError(RuntimeError):
    """The server did not behave as a healthy model server must."""


@dataclass(frozen=True)
class Response:
    """Status and decoded JSON body."""

    status: int
    body: Any


def free_port() -> int:
    """A local TCP port nobody listens on (for a server started just for a test)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(url: str, payload: object | None = None, timeout: float = 5.0) -> Response:
    """GET (no payload) or POST JSON; HTTP errors are returned, not raised.

    Raises:
        ValueError: the body is not JSON (an empty body is None).
    """
    data = None if payload is None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    call = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - URL chosen by the operator
    try:
        with urllib.request.urlopen(call, timeout=timeout) as reply:  # noqa: S310
            return Response(reply.status, json.loads(reply.read() or b"null"))
    except urllib.error.HTTPError as error:
        return Response(error.code, json.loads(error.read() or b"null"))


def answers_200(url: str) -> bool:
    """Whether GET ``url`` answers 200 now."""
    try:
        return request(url, timeout=1.0).status == 200
    except (OSError, ValueError):
        return False  # not listening yet, or not a route of this server


def wait_ready(url: str, deadline_seconds: float) -> float:
    """Poll ``/v2/health/ready`` until it answers 200; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_seconds:
        if answers_200(f"{url}/v2/health/ready"):
            return time.monotonic() - started
        time.sleep(0.05)
    raise SmokeTestError(f"{url}/v2/health/ready did not answer 200 within {deadline_seconds} s")


def tensors(rows: list[dict[str, Any]], shapes: dict[str, list[int]]) -> list[dict[str, Any]]:
    """The rows as Open Inference Protocol inputs: one tensor per feature.

    ``shapes`` holds each input's dimensions after the rows, as the model's metadata lists
    them: ``[1]`` for a value, ``[height, width, channels]`` for an image (whose nested
    lists are flattened in row-major order).
    """
    return [
        {
            "name": name,
            "datatype": "BYTES" if isinstance(value, str) else "FP32",
            "shape": [len(rows), *shapes[name]],
            "data": [element for row in rows for element in _flat(row[name])],
        }
        for name, value in rows[0].items()
    ]


def _flat(value: Any) -> list[Any]:
    """A value, or the elements of nested lists in row-major order."""
    if not isinstance(value, list):
        return [value]
    return [element for item in value for element in _flat(item)]


def input_shapes(url: str, model_name: str) -> dict[str, list[int]]:
    """Each input's dimensions after the rows, from ``GET /v2/models/<name>``."""
    metadata = request(f"{url}/v2/models/{model_name}")
    if metadata.status != 200:
        raise SmokeTestError(f"/v2/models/{model_name} answered {metadata.status}")
    return {tensor["name"]: tensor["shape"][1:] for tensor in metadata.body["inputs"]}


def _check(route: str, labels: list[int], probabilities: list[list[float]], case: Any) -> None:
    """Raise unless ``route`` gave the predictions export computed for the example rows."""
    for index, expected in enumerate(case["predictions"]):
        wanted = list(expected["probabilities"].values())
        close = len(probabilities[index]) == len(wanted) and all(
            math.isclose(got, value, abs_tol=TOLERANCE)
            for got, value in zip(probabilities[index], wanted, strict=True)
        )
        if labels[index] != expected["label"] or not close:
            raise SmokeTestError(
                f"{route}: row {index} got label {labels[index]}, probabilities "
                f"{probabilities[index]}; expected {expected}"
            )


def smoke_test(
    url: str, example: Path, model_name: str, deadline_seconds: float = 30.0
) -> dict[str, Any]:
    """Run the checks; return what was observed, or raise :class:`SmokeTestError`."""
    ready_after = wait_ready(url, deadline_seconds)
    case = json.loads(example.read_text(encoding="utf-8"))
    infer = f"/v2/models/{model_name}/infer"
    inputs = tensors(case["rows"], input_shapes(url, model_name))
    v2 = request(f"{url}{infer}", {"inputs": inputs})
    if v2.status != 200:
        raise SmokeTestError(f"{infer} answered {v2.status}: {v2.body}")
    outputs = {output["name"]: output for output in v2.body["outputs"]}
    columns = outputs["probabilities"]["shape"][1]
    flat = outputs["probabilities"]["data"]
    rows = [flat[start : start + columns] for start in range(0, len(flat), columns)]
    _check(infer, outputs["label"]["data"], rows, case)
    v2_bad = request(f"{url}{infer}", {"inputs": inputs[1:]})
    if not 400 <= v2_bad.status < 500:
        raise SmokeTestError(f"{infer} without an input answered {v2_bad.status}, expected 4xx")
    observed: dict[str, Any] = {
        "ready_after_seconds": round(ready_after, 3),
        "server": "another Open Inference Protocol server",
        "v2_request": {"status": v2.status, "labels": outputs["label"]["data"]},
        "v2_bad_request": {"status": v2_bad.status, "error": v2_bad.body["error"]},
    }
    if answers_200(f"{url}/ready"):
        observed.update(server="this project's", **_own_routes(url, case))
    return observed


def _own_routes(url: str, case: Any) -> dict[str, Any]:
    """``/predict``: the example predictions, and a row missing a field refused."""
    good = request(f"{url}/predict", {"rows": case["rows"]})
    if good.status != 200:
        raise SmokeTestError(f"good request answered {good.status}: {good.body}")
    predictions = good.body["predictions"]
    probabilities = [list(one["probabilities"].values()) for one in predictions]
    _check("/predict", [one["label"] for one in predictions], probabilities, case)
    broken_row = dict(case["rows"][0])
    broken_row.pop(next(iter(broken_row)))
    bad = request(f"{url}/predict", {"rows": [broken_row]})
    if not 400 <= bad.status < 500:
        raise SmokeTestError(f"a row with a missing field answered {bad.status}, expected 4xx")
    return {
        "good_request": {"status": good.status, "predictions": predictions},
        "bad_request": {"status": bad.status, "detail": bad.body["detail"]},
    }
