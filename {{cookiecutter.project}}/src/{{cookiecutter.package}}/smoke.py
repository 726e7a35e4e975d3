"""Smoke-test a running server: ready in time, one correct prediction, one bad request refused.

Used by ``make demo`` and by the container build, against the bundle's ``example.json``
(rows from the test split and the predictions export computed for them).
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
    """GET (no payload) or POST JSON; HTTP errors are returned, not raised."""
    data = None if payload is None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    call = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - URL chosen by the operator
    try:
        with urllib.request.urlopen(call, timeout=timeout) as reply:  # noqa: S310
            return Response(reply.status, json.loads(reply.read()))
    except urllib.error.HTTPError as error:
        return Response(error.code, json.loads(error.read() or b"null"))


def wait_ready(url: str, deadline_seconds: float) -> float:
    """Poll ``/ready`` until it answers 200; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_seconds:
        try:
            if request(f"{url}/ready", timeout=1.0).status == 200:
                return time.monotonic() - started
        except (OSError, ValueError):
            pass  # not listening yet
        time.sleep(0.05)
    raise SmokeTestError(f"{url}/ready did not answer 200 within {deadline_seconds} s")


def smoke_test(url: str, example: Path, deadline_seconds: float = 30.0) -> dict[str, Any]:
    """Run the three checks; return what was observed, or raise :class:`SmokeTestError`."""
    ready_after = wait_ready(url, deadline_seconds)
    case = json.loads(example.read_text(encoding="utf-8"))
    good = request(f"{url}/predict", {"rows": case["rows"]})
    if good.status != 200:
        raise SmokeTestError(f"good request answered {good.status}: {good.body}")
    for got, expected in zip(good.body["predictions"], case["predictions"], strict=True):
        close = all(
            math.isclose(got["probabilities"][cls], value, abs_tol=TOLERANCE)
            for cls, value in expected["probabilities"].items()
        )
        if got["label"] != expected["label"] or not close:
            raise SmokeTestError(f"prediction {got} differs from the expected {expected}")
    broken_row = dict(case["rows"][0])
    broken_row.pop(next(iter(broken_row)))
    bad = request(f"{url}/predict", {"rows": [broken_row]})
    if not 400 <= bad.status < 500:
        raise SmokeTestError(f"a row with a missing field answered {bad.status}, expected 4xx")
    return {
        "ready_after_seconds": round(ready_after, 3),
        "good_request": {"status": good.status, "predictions": good.body["predictions"]},
        "bad_request": {"status": bad.status, "detail": bad.body["detail"]},
    }
