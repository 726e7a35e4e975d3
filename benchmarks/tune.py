"""The tune stage per framework: search time, and memory of the whole Ray process tree.

For every framework choice: bake the project, install it into a virtualenv linked to this
one, run `dvc repro prepare`, switch tuning on with the project's own search space, then run
`<project> tune` (a local Ray with 2 CPUs) while sampling the resident memory of it and every
process under it (Ray's GCS, raylet and workers) every 0.2 s. Reports wall time, the peak of
that sum, and what the search found.

Usage, from the template repository:
    python benchmarks/tune.py [--trials 8] [--scheduler fifo] [--output results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from processes import watched  # beside this script

from tests.baking import Project, bake, install, switch_tuning_on


def search(project: Project, trials: int, scheduler: str) -> dict[str, object]:
    switch_tuning_on(project.root, trials=trials, scheduler=scheduler)
    command = [str(Path(project.env["VIRTUAL_ENV"]) / "bin" / project.root.name), "tune"]
    seconds, peak = watched(command, project.root, project.env)
    found = yaml.safe_load((project.root / "models" / "tuned.yaml").read_text())
    return {
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak / 1e6),
        "trials": found["trials"],
        "stopped_early": found["stopped_early"],
        "best_score": found["score"],
        "metric": found["metric"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--scheduler", choices=["fifo", "asha"], default="fifo")
    parser.add_argument("--frameworks", default="sklearn,pytorch,tensorflow")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="tune-bench-") as scratch:
        for framework in args.frameworks.split(","):
            root = Path(scratch) / framework
            project = install(bake(root, framework=framework), root / "venv")
            project.dvc("repro", "prepare")
            # asha needs epochs: scikit-learn searches with fifo whatever was asked.
            scheduler = "fifo" if framework == "sklearn" else args.scheduler
            result = {"framework": framework, "scheduler": scheduler}
            result |= search(project, args.trials, scheduler)
            print(json.dumps(result), flush=True)
            results.append(result)
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
