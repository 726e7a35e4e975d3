"""Per combination: pipeline, training and explanation time, serving against MLflow, image size.

For every supported combination of task and framework, one run: bake the project (default
answers otherwise), install it into a virtualenv linked to this one, time `dvc repro` from
scratch, its `train` stage (with the peak resident memory of its process tree: Ray's
processes for RLlib; for images, pretrain and train) and, for tabular projects, its `explain`
stage (run again on its own, the CLI without DVC), run
benchmarks/serve_vs_mlflow.py on its exported model (the same ONNX model for both servers),
and, with --image, build its serving image with the project's Dockerfile and report its size
over the base image.

Usage, from the template repository (needs wrk; --image needs a Docker engine):
    python benchmarks/frameworks.py [--image] [--duration 5]
        [--combinations sklearn,image-pytorch,...] [--output results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from processes import watched  # beside this script

from tests.baking import TEMPLATE, Project, bake, edit_params, install
from tests.infra import ensure_base_image, ensure_docker, image_size, sh


def timed(step: Callable[[], object]) -> float:
    started = time.monotonic()
    step()
    return time.monotonic() - started


def serving(project: Project, duration: int) -> dict[str, float]:
    output = project.root / "serve-benchmark.json"
    script = TEMPLATE / "benchmarks" / "serve_vs_mlflow.py"
    project.run(
        project.python, str(script), "--project", str(project.root),
        "--duration", str(duration), "--output", str(output),
        "--contenders", "ours,mlflow", "--repeats", "1",
    )  # fmt: skip
    return json.loads(output.read_text())["summary"]


# Combination -> its answers: a framework on the tabular task, or a task with its framework.
COMBINATIONS = {
    "sklearn": {},
    "pytorch": {"framework": "pytorch"},
    "tensorflow": {"framework": "tensorflow"},
    "image-pytorch": {"task": "image", "framework": "pytorch"},
    "image-tensorflow": {"task": "image", "framework": "tensorflow"},
    "rllib": {"task": "reinforcement-learning", "framework": "rllib"},
}


def image(project: Project, combination: str) -> dict[str, float]:
    ensure_docker()
    base = ensure_base_image()
    tag = f"gitops-mlops/bench-{combination}:latest"
    sh(
        "docker", "build", "--network=host", "--build-arg", f"BASE_IMAGE={base}",
        "-t", tag, str(project.root),
    )  # fmt: skip
    total, base_size = image_size(tag), image_size(base)
    return {"image_mb": total / 1e6, "own_layers_mb": (total - base_size) / 1e6}


EPOCHS = """
from pathlib import Path
from {package} import frameworks
framework = frameworks.load()
print(len(framework.curves(framework.load(Path("models/native")))))
"""


def fine_tuning_against_scratch(project: Project) -> dict[str, dict[str, float]]:
    """Test accuracy and epochs of fine-tuning (as reproduced) and of training from scratch."""

    def measured() -> dict[str, float]:
        metrics = json.loads((project.root / "metrics/metrics.json").read_text())
        epochs = project.run(project.python, "-c", EPOCHS.format(package=project.package))
        return {"accuracy": metrics["accuracy"], "epochs": int(epochs.stdout)}

    fine_tuned = measured()
    edit_params(project.root, "train", from_scratch=True)
    project.dvc("repro", "evaluate")
    return {"fine_tuned": fine_tuned, "from_scratch": measured()}


def measure(combination: str, root: Path, args: argparse.Namespace) -> dict[str, object]:
    answers = COMBINATIONS[combination]
    task = answers.get("task", "tabular")
    project = install(bake(root, **answers), root / "venv")
    result: dict[str, object] = {"combination": combination}
    # One `dvc repro` from scratch in three steps, so training is timed inside it (with DVC's
    # own overhead of a second or two): a separate training run would start another MLflow
    # run, without the ONNX model the MLflow server needs. An agent has no data stages.
    agent = task == "reinforcement-learning"
    before = 0.0 if agent else timed(lambda: project.dvc("repro", "prepare"))
    train = [project.python, "-m", "dvc", "repro", "train"]
    result["train_s"], peak = watched(train, project.root, project.env)
    result["train_peak_rss_mb"] = round(peak / 1e6)
    result["dvc_repro_s"] = before + result["train_s"] + timed(lambda: project.dvc("repro"))
    result["explain_s"] = timed(lambda: project.cli("explain")) if task == "tabular" else None
    result["serving"] = serving(project, args.duration)
    if args.image:
        result.update(image(project, combination))
    if task == "image":  # last: it retrains the project's model
        result["transfer"] = fine_tuning_against_scratch(project)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds of load per server")
    parser.add_argument("--image", action="store_true", help="also build each serving image")
    parser.add_argument("--output", type=Path, help="also write the results as JSON")
    parser.add_argument("--combinations", default=",".join(COMBINATIONS), help="comma-separated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        results = [
            measure(name, Path(scratch, name), args) for name in args.combinations.split(",")
        ]
    print(
        f"\n{'combination':<16} {'repro s':>8} {'train s':>8} {'train MB':>8} {'explain s':>9} "
        f"{'x mlflow':>9} {'p99 ms':>7}",
        end="",
    )
    print(f" {'image MB':>9} {'own MB':>7}" if args.image else "")
    for r in results:
        explain = "-" if r["explain_s"] is None else f"{r['explain_s']:.1f}"
        line = (
            f"{r['combination']:<16} {r['dvc_repro_s']:>8.1f} {r['train_s']:>8.1f} "
            f"{r['train_peak_rss_mb']:>8} {explain:>9} "
            f"{r['serving']['throughput_vs_mlflow']:>9.1f} {r['serving']['p99_ms']:>7.2f}"
        )
        if args.image:
            line += f" {r['image_mb']:>9.1f} {r['own_layers_mb']:>7.1f}"
        print(line)
    for r in results:
        if "transfer" in r:
            tuned, scratch = r["transfer"]["fine_tuned"], r["transfer"]["from_scratch"]
            print(
                f"{r['combination']}: fine-tuned accuracy {tuned['accuracy']:.4f} in "
                f"{tuned['epochs']} epochs; from scratch {scratch['accuracy']:.4f} in "
                f"{scratch['epochs']} epochs"
            )
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
