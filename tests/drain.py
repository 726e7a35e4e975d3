"""A burst of predictions with a signal in the middle: which requests a server loses.

Shared by the container test (which requires that none is lost) and the fault script.
``clients`` threads keep predictions in flight; once the server's own
``predictions_in_flight`` gauge reaches ``target``, the signal is sent. As in the cluster,
where the preStop sleep takes the pod out of the Service before SIGTERM, those clients
start no new request after it. Stragglers arrive around the signal, as they do while the
endpoints' removal propagates:

- "on its way": half of the request headers sent before the signal, the rest 1 s after;
- "kept alive": one request answered on a kept-alive connection before the signal, the
  next one on the same connection 0.2 s after it;
- "late": a new connection and request 0.3 s after the signal.

A request is lost when its client got no response: the connection was reset or closed
under it. A refused connection is counted apart: nothing was sent, but in the cluster the
proxy in front turns it into a 502.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


class StatusError(Exception):
    """The server answered, with something other than 200."""


@dataclass
class Burst:
    """What happened to every request of a burst."""

    in_flight_at_signal: int  # the server's predictions_in_flight gauge when it was signalled
    # (outcome, phase): outcome is "completed", "lost" (no response), "refused" (never sent)
    # or "status <code>"; phase is "in flight" (the clients that kept predicting) or a
    # straggler's
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)

    def count(self, outcome: str) -> int:
        """Requests with this outcome, whatever their phase."""
        return sum(n for (found, _), n in self.outcomes.items() if found == outcome)


def in_flight(port: int) -> int:
    """The server's own count of predictions in progress, from /metrics."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/metrics")
    for line in connection.getresponse().read().decode().splitlines():
        if line.startswith("predictions_in_flight "):
            return int(float(line.split()[1]))
    raise AssertionError("/metrics has no predictions_in_flight gauge")


def burst(
    port: int,
    rows: list[dict[str, object]],
    signal: Callable[[], None],
    clients: int = 60,
    target: int = 50,
    stragglers: int = 5,
) -> Burst:
    """Run the burst against the server on ``port``; ``signal`` stops it (SIGTERM, SIGKILL)."""
    body = json.dumps({"rows": rows}).encode()
    request = (
        f"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    half = request.index(b"\r\n\r\n") // 2
    result = Burst(in_flight_at_signal=0)
    lock = threading.Lock()
    signalled = threading.Event()

    def connect() -> socket.socket:
        return socket.create_connection(("127.0.0.1", port), timeout=60)

    def ask(sock: socket.socket, data: bytes) -> None:
        """Send (the rest of) a request and read its response."""
        sock.sendall(data)
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        payload = response.read()
        if response.status != 200:
            raise StatusError(f"status {response.status}")
        if len(json.loads(payload)["predictions"]) != len(rows):
            raise AssertionError("a response without one prediction per row")

    def exchange(phase: str, step: Callable[[], None]) -> None:
        try:
            step()
            outcome = "completed"
        except StatusError as answer:
            outcome = str(answer)
        except ConnectionRefusedError:
            outcome = "refused"
        except (OSError, http.client.HTTPException):
            outcome = "lost"
        with lock:
            result.outcomes[outcome, phase] += 1

    def keep_predicting() -> None:
        while not signalled.is_set():

            def predict() -> None:
                with connect() as sock:
                    ask(sock, request)

            exchange("in flight", predict)

    def straggle(phase: str, sock: socket.socket | None, delay: float, data: bytes) -> None:
        signalled.wait()
        time.sleep(delay)

        def finish() -> None:
            with sock or connect() as connection:
                ask(connection, data)

        exchange(phase, finish)

    late: list[tuple[str, socket.socket | None, float, bytes]] = []
    for _ in range(stragglers):
        on_its_way, kept_alive = connect(), connect()
        on_its_way.sendall(request[:half])
        ask(kept_alive, request)
        late += [
            ("on its way", on_its_way, 1.0, request[half:]),
            ("kept alive", kept_alive, 0.2, request),
            ("late", None, 0.3, request),
        ]
    workers = [threading.Thread(target=keep_predicting) for _ in range(clients)]
    workers += [threading.Thread(target=straggle, args=arguments) for arguments in late]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and result.in_flight_at_signal < target:
        result.in_flight_at_signal = in_flight(port)
    signal()
    signalled.set()
    for worker in workers:
        worker.join(timeout=90)
    return result
