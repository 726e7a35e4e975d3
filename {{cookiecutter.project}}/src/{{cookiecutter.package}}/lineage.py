"""What CI/CD needs to know about this project's model, as versioned JSON: the contract.

The reusable actions never read the project's files; they run ``make`` targets and read this
document (``<cli> lineage --json``). Both sides check :data:`CONTRACT_VERSION`: an action
that speaks another version announces it in ``GITOPS_MLOPS_CONTRACT`` and is refused here, and
the actions refuse a document of a version they do not speak. Bump the version whenever a
field is added, removed or changes meaning, and store the new schema in the template's tests.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import yaml

from .config import Paths, StageError
from .files import read_json
from .serve.bundle import METADATA_FILE, bundle_sha256, read_manifest
from .verdict import Verdict

CONTRACT_VERSION = 1
CALLER_VERSION = "GITOPS_MLOPS_CONTRACT"
IMAGE_PORT = 8080  # the port the serving image listens on (Dockerfile: SERVE_PORT)


def check_caller() -> None:
    """Refuse a caller (a composite action) that speaks another contract version.

    Raises:
        StageError: saying which side to update.
    """
    caller = os.environ.get(CALLER_VERSION)
    if caller is not None and caller != str(CONTRACT_VERSION):
        raise StageError(
            f"the calling actions speak contract version {caller}, this project speaks "
            f"{CONTRACT_VERSION}: bring the project up to date with `cruft update`, or pin "
            "actions_ref to a release of the actions that speaks its version"
        )


def _git_sha(paths: Paths) -> str:
    result = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=paths.root, capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def _dvc_md5(paths: Paths) -> str:
    """The hash DVC recorded for the bundle in ``dvc.lock`` (its ``.dir`` md5)."""
    if not paths.dvc_lock.is_file():
        return "unknown"
    bundle = paths.bundle.relative_to(paths.root).as_posix()
    for stage in (yaml.safe_load(paths.dvc_lock.read_text(encoding="utf-8")) or {})[
        "stages"
    ].values():
        for out in stage.get("outs", []):
            if out.get("path") == bundle:
                return str(out.get("md5", "unknown"))
    return "unknown"


def lineage(paths: Paths) -> dict[str, Any]:
    """The contract document for the current workspace.

    Raises:
        StageError: when there is no exported bundle or verdict yet.
    """
    check_caller()
    if not paths.verdict.is_file() or not (paths.bundle / METADATA_FILE).is_file():
        raise StageError("no validated model here yet: run `dvc repro` (make repro) first")
    manifest = read_manifest(paths.bundle)
    verdict = Verdict.from_json(read_json(paths.verdict))
    run_id = paths.mlflow_run.read_text().strip() if paths.mlflow_run.is_file() else "unknown"
    root = paths.root.resolve()
    return {
        "contract": CONTRACT_VERSION,
        "git_sha": _git_sha(paths),
        "model": {
            "sha256": manifest["model_sha256"],
            "bundle": str(paths.bundle.resolve()),
            "bundle_sha256": bundle_sha256(paths.bundle),
            "dvc_md5": _dvc_md5(paths),
            "framework": read_json(paths.bundle / METADATA_FILE)["framework"],
        },
        "verdict": {
            "passed": verdict.passed,
            "failed": [gate.failure() for gate in verdict.failed],
            "model_sha256": verdict.model_sha256,
            "path": str(paths.verdict.resolve()),
            "report": str(paths.report.resolve()),
        },
        "metrics": verdict.metrics,
        "mlflow_run_id": run_id,
        "artifacts": [str(path.relative_to(paths.root)) for path in paths.artifacts],
        "image": {"context": str(root), "port": IMAGE_PORT},
    }
