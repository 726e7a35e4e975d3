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

from .app import ServingApp
from .settings import ServeSettings

STARTUP_FAILURE = 3


class DrainingServer(uvicorn.Server):
    """uvicorn that stops accepting before it closes idle connections.

    uvicorn's shutdown closes idle connections at once, including ones accepted a moment ago
    whose request is still on its way, so those clients see their request cut. Closing the
    listener first makes new clients fail fast (refused: nothing was sent, safe to retry);
    the linger lets accepted connections deliver their request, which is then served.
    """

    linger_seconds = 0.5

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Refuse new connections, linger, then drain in-flight requests."""
        for server in self.servers:
            server.close()
        await asyncio.sleep(self.linger_seconds)
        await super().shutdown(sockets)


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """httptools with a deadline for each request's headers.

    uvicorn waits for headers forever, so a client that trickles them (slowloris) holds a
    connection and its buffers for as long as it likes. Here it gets a 408 and is
    disconnected. The body has its own deadline in the app.
    """

    header_seconds = 10.0
    _timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's headers."""
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        """Start the clock for each request on a kept-alive connection."""
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        """Headers arrived in time: the app takes over (with its body deadline)."""
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Nothing left to time."""
        self._disarm()
        super().connection_lost(exc)

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
