"""Contender in the serving benchmark: the generated server's ASGI app under granian.

granian is an HTTP server written in Rust. The app is the very one ``python -m <package>.serve``
runs under uvicorn (settings from the same ``SERVE_*`` variables, the model loaded in its
lifespan), so the difference measured is the HTTP server's alone. Production keeps uvicorn:
the drain on SIGTERM and the header deadline are built on uvicorn's protocol classes.
"""

from __future__ import annotations

import importlib
import os

# The benchmark names the generated project's package.
serve = importlib.import_module(f"{os.environ['BENCH_PACKAGE']}.serve.app")
settings = importlib.import_module(f"{os.environ['BENCH_PACKAGE']}.serve.settings")
app = serve.ServingApp(settings.ServeSettings())
