"""GitHub Actions workflow commands shared by the composite actions' scripts (stdlib only).

Outside a runner (unit tests, local runs) the files named by GITHUB_OUTPUT and
GITHUB_STEP_SUMMARY may be unset: outputs and summaries then go nowhere, annotations to stdout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn


def set_output(name: str, value: str) -> None:
    """Set a step output; multi-line values use a random heredoc delimiter."""
    if "\n" in value:
        delimiter = f"EOF_{uuid.uuid4().hex}"
        _append("GITHUB_OUTPUT", f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    else:
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


def fail(message: str) -> NoReturn:
    """Annotate an error and stop the step."""
    error(message)
    sys.exit(1)


def run(
    command: Sequence[str], cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> int:
    """Run a command with its output streamed to the log; return its exit code."""
    print(f"$ {' '.join(command)}", flush=True)
    merged = None if env is None else {**os.environ, **env}
    return subprocess.run(command, cwd=cwd, env=merged, check=False).returncode


def _append(variable: str, text: str) -> None:
    path = os.environ.get(variable)
    if path:
        with Path(path).open("a", encoding="utf-8") as handle:
            handle.write(text)


def _escape(message: str) -> str:
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
