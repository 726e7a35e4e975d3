"""The command line: one command per stage, and no training library loaded to show help."""

from __future__ import annotations

import json
import subprocess
import sys

from {{ cookiecutter.package }}.cli import STAGES

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
