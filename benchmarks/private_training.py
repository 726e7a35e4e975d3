"""Differentially private training's cost: accuracy and time against non-private training.

Bakes a project of `--framework` (scikit-learn: objective perturbation; PyTorch: Opacus
DP-SGD), installs it into a virtualenv linked to this one, prepares the demo data, and in the
project's own environment fits its framework (the code `train` runs) `--repeats` times per
setting on the training split, scoring each fit on the test split: non-private, then
`train.dp_epsilon` at several epsilons. The noise differs each fit, so the rows give the
mean, minimum and maximum.

Usage, from the template repository:
    python benchmarks/private_training.py [--framework sklearn] [--repeats 20] [--output F]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.baking import bake, install

EPSILONS = [0.5, 1.0, 2.0, 4.0]
# What private training changes besides dp_epsilon. scikit-learn: more regularization than
# the default C=1, so less noise in the weights.
PRIVATE_CHANGES = {"sklearn": {"C": 0.5}, "pytorch": {}}

# Runs inside the baked project. argv: fits per setting, epsilons (JSON), changes (JSON).
FITS = """
import json, sys, time
from pathlib import Path
from sklearn.metrics import accuracy_score, roc_auc_score
from my_ml_project import frameworks
from my_ml_project.config import Params, Paths
from my_ml_project.data import read_prepared
from my_ml_project.schema import Schema

framework, paths = frameworks.load(), Paths()
schema, params = Schema.load(paths.schema), Params.load()
features, target = read_prepared(paths.train, schema)
test_features, test_target = read_prepared(paths.test, schema)
settings = [("non-private", {})] + [
    (f"dp_epsilon={e}", {"dp_epsilon": e, **json.loads(sys.argv[3])})
    for e in json.loads(sys.argv[2])
]
results = []
for name, changes in settings:
    train = framework.Params.model_validate({**params.train, **changes})
    fits = []
    for _ in range(int(sys.argv[1])):
        started = time.perf_counter()
        model = framework.fit(features, target, schema, train, params.seed)
        seconds = time.perf_counter() - started
        probability = framework.predict_proba(model, test_features)[:, 1]
        fits.append({
            "seconds": seconds,
            "accuracy": accuracy_score(test_target, probability >= 0.5),
            "roc_auc": roc_auc_score(test_target, probability),
        })
    results.append({"setting": name, "fits": fits})
print(json.dumps(results))
"""


def summary(setting: dict[str, Any]) -> dict[str, Any]:
    fits = setting["fits"]
    row: dict[str, Any] = {"setting": setting["setting"], "fits": len(fits)}
    for key in ("seconds", "accuracy", "roc_auc"):
        values = [fit[key] for fit in fits]
        row[key] = {
            "mean": round(sum(values) / len(values), 4),
            "min": round(min(values), 4),
            "max": round(max(values), 4),
        }
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=sorted(PRIVATE_CHANGES), default="sklearn")
    parser.add_argument("--repeats", type=int, default=20, help="fits per setting")
    parser.add_argument("--output", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        project = install(bake(Path(scratch), framework=args.framework), Path(scratch, "venv"))
        project.dvc("repro", "prepare")
        changes = json.dumps(PRIVATE_CHANGES[args.framework])
        printed = project.run(
            project.python, "-c", FITS, str(args.repeats), json.dumps(EPSILONS), changes
        )
        results = [summary(setting) for setting in json.loads(printed.stdout)]
    base = results[0]
    print(f"\n{'setting':<18} {'fit ms':>8} {'x time':>7} {'accuracy (min-max)':>22} {'AUC':>7}")
    for row in results:
        seconds, accuracy, auc = row["seconds"], row["accuracy"], row["roc_auc"]
        ratio = seconds["mean"] / base["seconds"]["mean"]
        print(
            f"{row['setting']:<18} {seconds['mean'] * 1000:>8.1f} {ratio:>7.2f} "
            f"{accuracy['mean']:>8.3f} ({accuracy['min']:.3f}-{accuracy['max']:.3f}) "
            f"{auc['mean']:>7.3f}"
        )
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
