"""Run the pipeline and its gates against a baseline, and publish the report.

The baseline is the model at a git ref (the pull request's base branch, or the commit before
a push), which the project fetches itself (``make validate BASE=<commit>``). A ref that
names no commit means no baseline, which the report states; the absolute thresholds still
apply. Everything else comes from the project's lineage document (``make lineage``).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from gitops_mlops import contract, inputs, workflow


@dataclass(frozen=True)
class Inputs:
    """This action's inputs (see action.yml)."""

    baseline_ref: str
    fail_on_gate: bool


def resolve_baseline(ref: str) -> str | None:
    """The commit of ``origin/<ref>`` or else ``<ref>``; None when neither names one."""
    if not ref:
        return None
    for candidate in (f"origin/{ref}", ref):
        found = subprocess.run(
            [
                "git",
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                candidate + "^{commit}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if found.returncode == 0:
            return found.stdout.strip()
    return None


def artifact_table(roots: list[str]) -> str:
    """Markdown table of the files CI uploads: path, size and SHA-256 prefix (lineage)."""
    rows = ["### Artifacts", "", "| file | bytes | sha256 |", "| --- | ---: | --- |"]
    for root in roots:
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            rows.append(f"| `{path.as_posix()}` | {path.stat().st_size} | `{digest}` |")
    return "\n".join(rows)


def main() -> int:
    """``make validate``, then read the verdict from the lineage; outputs for CD and reports."""
    given = inputs.read(Inputs)
    baseline = resolve_baseline(given.baseline_ref)
    if given.baseline_ref and baseline is None:
        workflow.notice(f"baseline ref {given.baseline_ref} not found: absolute thresholds only")
    status = workflow.run(["make", "validate", f"BASE={baseline or ''}"], env=contract.CALLER_ENV)
    lineage = contract.describe()
    verdict = lineage.verdict
    if verdict.model_sha256 != lineage.model.sha256 or (status != 0 and not verdict.failed):
        workflow.fail(f"the pipeline failed before the gates (exit {status}): see the log above")
    passed = verdict.passed and status == 0
    workflow.set_output("passed", str(passed).lower())
    workflow.set_output("report", verdict.report)
    workflow.set_output("model-sha256", lineage.model.sha256)
    workflow.set_output("artifacts", "\n".join(lineage.artifacts))
    workflow.append_summary(Path(verdict.report).read_text(encoding="utf-8"))
    workflow.append_summary(artifact_table(lineage.artifacts))
    if passed:
        return 0
    message = f"model rejected by gate(s): {'; '.join(verdict.failed)}"
    if given.fail_on_gate:
        workflow.fail(message)
    workflow.warning(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
