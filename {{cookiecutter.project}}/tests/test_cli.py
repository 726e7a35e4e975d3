"""The command line: a command per stage, no training library loaded for help, env-driven serve."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from {{ cookiecutter.package }}.cli import STAGES
from {{ cookiecutter.package }}.config import Paths
from {{ cookiecutter.package }}.smoke import free_port, wait_ready

TRAINING_LIBRARIES = {
    "sklearn",
    "skl2onnx",
    "pandas",
    "mlflow",
    "onnx",
    "fairlearn",
    "dvc",
    "onnxruntime",
}


def test_help_imports_no_training_library() -> None:
    script = (
        "import sys, json\n"
        "from {{ cookiecutter.package }}.cli import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(result.stdout.splitlines()[-1]))
    assert "typer" in loaded  # the probe sees real imports
    assert sorted(loaded & TRAINING_LIBRARIES) == []
    for stage in STAGES:
        assert stage in result.stdout


def test_serve_takes_its_settings_from_the_environment(paths: Paths) -> None:
    """`<cli> serve` without options runs as the container does: SERVE_* variables decide."""
    port = free_port()
    env = {
        **os.environ,
        "SERVE_PORT": str(port),
        "SERVE_MODEL_DIR": str(paths.bundle),
        "SERVE_LOG_LEVEL": "warning",
    }
    script = "from {{ cookiecutter.package }}.cli import app; app()"
    server = subprocess.Popen([sys.executable, "-c", script, "serve"], env=env)
    try:
        assert wait_ready(f"http://127.0.0.1:{port}", deadline_seconds=30) < 30
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
