"""Reproduce the model, apply the gates against a baseline, and publish the report.

The baseline is the ``metrics/metrics.json`` committed at a git ref: the pull request's base
branch, or the previous commit on a push. A ref that cannot be resolved means no baseline,
which the report states; the absolute thresholds still apply.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import workflow

REPORT = Path("reports/report.md")
VERDICT = Path("reports/verdict.json")
ARTIFACTS = ("models/serving", "metrics", "plots", "reports")


def resolve_baseline(ref: str) -> str | None:
    """The first of ``origin/<ref>`` and ``<ref>`` that names a commit, else None."""
    if not ref:
        return None
    for candidate in (f"origin/{ref}", ref):
        found = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"],
            capture_output=True,
            check=False,
        )
        if found.returncode == 0:
            return candidate
    return None


def failed_gates(verdict: dict) -> list[str]:
    """Names of the gates that failed, with their failing checks."""
    names = []
    for gate in (gate for gate in verdict["gates"] if gate["status"] == "failed"):
        checks = ", ".join(check["name"] for check in gate["checks"] if not check["passed"])
        names.append(f"{gate['name']} ({checks or gate['detail']})")
    return names


def artifact_table(roots: tuple[str, ...] = ARTIFACTS) -> str:
    """Markdown table of the files CI uploads: path, size and SHA-256 prefix (lineage)."""
    rows = ["### Artifacts", "", "| file | bytes | sha256 |", "| --- | ---: | --- |"]
    for root in roots:
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            rows.append(f"| `{path.as_posix()}` | {path.stat().st_size} | `{digest}` |")
    return "\n".join(rows)


def main() -> int:
    """Run ``make model`` then ``make validate``; outputs ``passed`` and ``report``."""
    if workflow.run(["make", "model"]) != 0:
        workflow.fail("the pipeline failed before the gates: see the log above")
    requested = workflow.input_value("baseline-ref")
    baseline = resolve_baseline(requested)
    if requested and baseline is None:
        workflow.notice(f"baseline ref {requested} not found: applying absolute thresholds only")
    status = workflow.run(["make", "validate", f"BASE={baseline or ''}"])
    if not VERDICT.exists() or not REPORT.exists():
        workflow.fail(f"validate wrote no verdict (exit {status}): see the log above")
    verdict = json.loads(VERDICT.read_text(encoding="utf-8"))
    passed = bool(verdict["passed"]) and status == 0
    workflow.set_output("passed", str(passed).lower())
    workflow.set_output("report", str(REPORT.resolve()))
    workflow.append_summary(REPORT.read_text(encoding="utf-8"))
    workflow.append_summary(artifact_table())
    if passed:
        return 0
    message = f"model rejected by gate(s): {'; '.join(failed_gates(verdict))}"
    if workflow.input_value("fail-on-gate", "true") == "true":
        workflow.fail(message)
    workflow.warning(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
