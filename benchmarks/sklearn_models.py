"""The scikit-learn classifiers and Fairlearn mitigation: training time, quality, fairness.

Bakes the default project, installs it into a virtualenv linked to this one, and for each
variant sets its `train` values, then times `dvc repro train` (prepare already done) and runs
the rest of the pipeline. Reports training time, accuracy, ROC AUC, the demographic parity
difference by gender (before mitigation too, when mitigated), ONNX parity and the verdict.
`--biased` first denies half the women's approvals, as the template's fairness test does, and
loosens the thresholds so the fairness gate decides.

Usage, from the template repository:
    python benchmarks/sklearn_models.py [--biased] [--output results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.baking import (
    BIASED_LABEL_THRESHOLDS,
    Project,
    bake,
    deny_half_the_women,
    edit_csv,
    edit_params,
    install,
)

VARIANTS = {
    "logistic_regression": {"model": "logistic_regression", "fairness_mitigation": "none"},
    "ebm": {"model": "ebm", "fairness_mitigation": "none"},
    "logistic_regression + grid_search": {
        "model": "logistic_regression",
        "fairness_mitigation": "grid_search",
    },
    "ebm + grid_search": {"model": "ebm", "fairness_mitigation": "grid_search"},
}


def read(project: Project, path: str) -> dict:
    return json.loads((project.root / path).read_text())


def measure(project: Project, name: str, values: dict[str, str]) -> dict[str, object]:
    edit_params(project.root, "train", **values)
    started = time.monotonic()
    project.dvc("repro", "train")
    seconds = time.monotonic() - started
    project.dvc("repro", check=False)  # a rejected model is a result here, not an error
    metrics, fairness = (
        read(project, "metrics/metrics.json"),
        read(project, "metrics/fairness.json"),
    )
    verdict = read(project, "reports/verdict.json")
    gender = fairness["gender"]
    return {
        "variant": name,
        "train_s": round(seconds, 1),
        "accuracy": metrics["accuracy"],
        "roc_auc": metrics["roc_auc"],
        "dp_difference": gender["demographic_parity_difference"],
        "dp_difference_before": gender.get("unmitigated", {}).get("demographic_parity_difference"),
        "parity_max_abs_diff": read(project, "metrics/parity.json")["max_abs_diff"],
        "verdict": "passed" if verdict["passed"] else "rejected",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--biased", action="store_true", help="deny half the women's approvals")
    parser.add_argument("--output", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        project = install(bake(Path(scratch)), Path(scratch, "venv"))
        if args.biased:
            edit_csv(project.root / "data" / "demo" / "loans.csv", deny_half_the_women)
            edit_params(project.root, "validate", thresholds=BIASED_LABEL_THRESHOLDS)
        project.dvc("repro", "prepare")
        results = [measure(project, name, values) for name, values in VARIANTS.items()]
    print(f"\n{'variant':<34} {'train s':>7} {'acc':>6} {'auc':>6} {'DP diff':>12} {'parity':>8}")
    for r in results:
        before = "" if r["dp_difference_before"] is None else f"{r['dp_difference_before']:.3f}->"
        print(
            f"{r['variant']:<34} {r['train_s']:>7.1f} {r['accuracy']:>6.3f} {r['roc_auc']:>6.3f} "
            f"{before + format(r['dp_difference'], '.3f'):>12} {r['parity_max_abs_diff']:>8.1e} "
            f"{r['verdict']}"
        )
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
