"""``python -m <package>.serve``: the serving image's entrypoint.

uvicorn (uvloop, httptools) in one process: scale with replicas, not workers, so /metrics
describes the whole server. On SIGTERM it drains: see :class:`DrainingServer`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import socket
import sys

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from .app import ServingApp
from .settings import ServeSettings

STARTUP_FAILURE = 3


class DrainState(ServerState):
    """uvicorn's shared server state, plus what the drain watches."""

    draining = False
    # Connections accepted and requests begun so far: the drain waits until neither moves.
    activity = 0


class DrainingServer(uvicorn.Server):
    """uvicorn that completes every request it has received before it stops.

    uvicorn's shutdown closes the listener at once, which resets connections still in the
    accept backlog, and closes every connection with no complete request, including ones
    whose request is on its way. Here, on SIGTERM, the server keeps accepting until it has
    been quiet (no new connection, no new request) for ``quiet_seconds``, answers with
    ``Connection: close`` meanwhile, and only then closes the listener. A connection whose
    request has begun is served before it is closed (see :class:`HeaderDeadlineProtocol`).
    Everything fits in ``drain_seconds``; in the cluster the preStop sleep has already taken
    the pod out of the Service, so the quiet comes at once.
    """

    quiet_seconds = 0.5

    def __init__(self, config: uvicorn.Config) -> None:
        """Start as uvicorn does, with the state the drain watches."""
        super().__init__(config)
        self.server_state = DrainState()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Wait for quiet (bounded by the drain), then stop as uvicorn does."""
        state = self.server_state
        assert isinstance(state, DrainState)
        state.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.timeout_graceful_shutdown
        seen, quiet_since = state.activity, loop.time()
        while loop.time() - quiet_since < self.quiet_seconds and loop.time() < deadline:
            await asyncio.sleep(0.05)
            if state.activity != seen:
                seen, quiet_since = state.activity, loop.time()
        self.config.timeout_graceful_shutdown = max(0.0, deadline - loop.time())
        await super().shutdown(sockets)


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """httptools with a deadline for each request's headers, and a drain that waits for them.

    uvicorn waits for headers forever, so a client that trickles them (slowloris) holds a
    connection and its buffers for as long as it likes. Here it gets a 408 and is
    disconnected. The body has its own deadline in the app.
    """

    header_seconds = 10.0
    _timer: asyncio.TimerHandle | None = None
    _receiving_headers = False
    _close_after_response = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's headers."""
        super().connection_made(transport)
        self._drain_state().activity += 1
        self._arm()

    def on_message_begin(self) -> None:
        """Start the clock for each request on a kept-alive connection."""
        super().on_message_begin()
        self._drain_state().activity += 1
        self._receiving_headers = True
        self._arm()

    def on_headers_complete(self) -> None:
        """Headers arrived in time: the app takes over (with its body deadline)."""
        self._disarm()
        self._receiving_headers = False
        super().on_headers_complete()
        if self._close_after_response or self._drain_state().draining:
            self.cycle.keep_alive = False

    def shutdown(self) -> None:
        """Close the connection unless a request's headers are still arriving.

        That request is served first, then the connection closes; uvicorn would close it
        under the request.
        """
        if self._receiving_headers:
            self._close_after_response = True
        else:
            super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        """Nothing left to time."""
        self._disarm()
        super().connection_lost(exc)

    def _drain_state(self) -> DrainState:
        assert isinstance(self.server_state, DrainState)
        return self.server_state

    def _arm(self) -> None:
        self._disarm()
        self._timer = self.loop.call_later(self.header_seconds, self._overdue)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _overdue(self) -> None:
        body = b'{"detail":"request headers not received in time"}'
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        self.transport.close()


def run(settings: ServeSettings | None = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    settings = settings or ServeSettings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = uvicorn.Config(
        ServingApp(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http=type(
            "Protocol",
            (HeaderDeadlineProtocol,),
            {"header_seconds": settings.header_timeout_seconds},
        ),
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=settings.drain_seconds,
    )
    server = DrainingServer(config)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


if __name__ == "__main__":
    run()
