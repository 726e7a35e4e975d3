"""Run a command and watch it: wall time, and the peak resident memory of its process tree.

The tree matters for Ray: its GCS, raylet and workers are children of the command.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants (those still alive)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def watched(command: Sequence[str], cwd: Path, env: Mapping[str, str]) -> tuple[float, int]:
    """Seconds the command ran and the peak of its tree's resident bytes (sampled every
    0.2 s); exits the benchmark when the command fails."""
    started = time.monotonic()
    child = subprocess.Popen(command, cwd=cwd, env=env)
    process, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        peak = max(peak, tree_rss(process))
        time.sleep(0.2)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {child.returncode}")
    return time.monotonic() - started, peak
