"""Install the project (``make install``) and, when a DVC remote is given, pull the data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import workflow


def main() -> int:
    """Install, configure the remote, pull; outputs ``dvc-pulled``."""
    if workflow.run(["make", "install"]) != 0:
        workflow.fail("make install failed: see the log above")
    remote = workflow.input_value("dvc-remote-url")
    if not remote:
        workflow.notice("No DVC remote configured: the pipeline reproduces from the data in git.")
        workflow.set_output("dvc-pulled", "false")
        return 0
    # --local: the CI remote lives in .dvc/config.local and never reaches a commit.
    # The Makefile's virtualenv (VENV may point elsewhere, as it does in the template's tests).
    dvc = [str(Path(os.environ.get("VENV", ".venv")) / "bin" / "python"), "-m", "dvc"]
    if workflow.run([*dvc, "remote", "add", "--local", "--default", "--force", "ci", remote]) != 0:
        workflow.fail(f"cannot configure the DVC remote {remote}")
    if workflow.run([*dvc, "pull", "--allow-missing"]) != 0:
        workflow.fail(f"dvc pull from {remote} failed: check the remote URL and its credentials")
    workflow.set_output("dvc-pulled", "true")
    return 0


if __name__ == "__main__":
    sys.exit(main())
