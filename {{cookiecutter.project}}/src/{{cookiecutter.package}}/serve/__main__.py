"""``python -m <package>.serve``: the serving image's entrypoint.

uvicorn with uvloop and httptools; on SIGTERM it stops accepting connections and lets
in-flight requests finish (up to ``SERVE_DRAIN_SECONDS``) before exiting.
"""

from __future__ import annotations

import importlib.util
import logging
import os

import uvicorn

from .settings import ServeSettings


def run(settings: ServeSettings | None = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    settings = settings or ServeSettings()
    # The app factory reads its settings from the environment, in every worker process.
    os.environ.update(
        {f"SERVE_{name.upper()}": str(value) for name, value in settings.model_dump().items()}
    )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        f"{__package__}.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=settings.drain_seconds,
    )


if __name__ == "__main__":
    run()
