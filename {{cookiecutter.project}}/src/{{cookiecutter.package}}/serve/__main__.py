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
        http="httptools",
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
