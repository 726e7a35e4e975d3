"""GitHub Actions workflow commands shared by the composite actions' scripts (stdlib only).

Outside a runner (unit tests, local runs) the files named by GITHUB_OUTPUT and
GITHUB_STEP_SUMMARY may be unset: outputs and summaries then go nowhere, annotations to stdout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def set_output(name: str, value: str) -> None:
    """Set a step output (single-line values only)."""
    if "\n" in value:
        raise ValueError(f"output {name} must be a single line")
    _append("GITHUB_OUTPUT", f"{name}={value}\n")


def append_summary(markdown: str) -> None:
    """Add Markdown to the job summary."""
    _append("GITHUB_STEP_SUMMARY", "\n" + markdown.strip("\n") + "\n")  # blocks stay apart


def notice(message: str) -> None:
    """A notice annotation."""
    print(f"::notice::{_escape(message)}", flush=True)


def warning(message: str) -> None:
    """A warning annotation."""
    print(f"::warning::{_escape(message)}", flush=True)


def error(message: str) -> None:
    """An error annotation."""
    print(f"::error::{_escape(message)}", flush=True)


def run(command: Sequence[str], cwd: Path | None = None) -> int:
    """Run a command with its output streamed to the log; return its exit code."""
    print(f"$ {' '.join(command)}", flush=True)
    return subprocess.run(command, cwd=cwd, check=False).returncode


def input_value(name: str, default: str = "") -> str:
    """An action input, passed to the script as INPUT_<NAME> through ``env:``."""
    return os.environ.get(f"INPUT_{name.upper().replace('-', '_')}", default).strip()


def _append(variable: str, text: str) -> None:
    path = os.environ.get(variable)
    if path:
        with Path(path).open("a", encoding="utf-8") as handle:
            handle.write(text)


def _escape(message: str) -> str:
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def fail(message: str) -> None:
    """Annotate an error and stop the step."""
    error(message)
    sys.exit(1)
