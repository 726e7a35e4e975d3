"""Install the project (``make install``) and, when a DVC remote is given, pull from it."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from gitops_mlops import inputs, workflow


@dataclass(frozen=True)
class Inputs:
    """This action's inputs (see action.yml)."""

    dvc_remote_url: str


def main() -> int:
    """Install, then ``make pull REMOTE=...``; outputs ``dvc-pulled``."""
    given = inputs.read(Inputs)
    started = time.monotonic()
    if workflow.run(["make", "install"]) != 0:
        workflow.fail("make install failed: see the log above")
    # Install time is the cost the pip cache saves: watch it grow when the cache misses.
    workflow.append_summary(f"Installed the project in {time.monotonic() - started:.0f} s.")
    if not given.dvc_remote_url:
        workflow.notice("No DVC remote configured: the pipeline reproduces from the data in git.")
        workflow.set_output("dvc-pulled", "false")
        return 0
    if workflow.run(["make", "pull", f"REMOTE={given.dvc_remote_url}"]) != 0:
        workflow.fail(
            f"dvc pull from {given.dvc_remote_url} failed: check the remote URL and its credentials"
        )
    workflow.set_output("dvc-pulled", "true")
    return 0


if __name__ == "__main__":
    sys.exit(main())
