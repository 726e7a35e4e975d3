"""End to end on a baked default project: real DVC, MLflow (SQLite), onnxruntime and uvicorn.

Each test bakes its own project so the tests can run in parallel and cannot leak state.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .baking import Project, bake, install

pytestmark = pytest.mark.e2e

STAGES = ["ingest", "prepare", "train", "evaluate", "export", "validate"]
OUTPUTS = ["data/raw", "data/prepared", "models", "metrics", "plots", "reports"]
Rows = list[dict[str, str]]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return install(bake(tmp_path / "out"), tmp_path / "venv")


def edit_demo_data(project: Project, change: Callable[[Rows], Rows]) -> None:
    path = project.root / "data" / "demo" / "loans.csv"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows = change(rows)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def verdict(project: Project) -> dict:
    return json.loads((project.root / "reports" / "verdict.json").read_text())


def gate_status(project: Project) -> dict[str, str]:
    return {gate["name"]: gate["status"] for gate in verdict(project)["gates"]}


def test_repro_runs_six_stages_and_is_reproducible(project: Project) -> None:
    first = project.dvc("repro")
    for stage in STAGES:
        assert f"Running stage '{stage}'" in first.stdout
    lock = (project.root / "dvc.lock").read_text()
    assert list(yaml.safe_load(lock)["stages"]) == STAGES
    assert gate_status(project) == {
        "thresholds": "passed",
        "baseline": "skipped",
        "fairness": "passed",
        "onnx_parity": "passed",
    }
    assert "Data and pipelines are up to date." in project.dvc("repro").stdout

    # A clean re-run: no outputs, and --force so every command really runs (no cache restore).
    for output in OUTPUTS:
        project.run("rm", "-rf", output)
    again = project.dvc("repro", "--force")
    assert all(f"Running stage '{stage}'" in again.stdout for stage in STAGES)
    assert (project.root / "dvc.lock").read_text() == lock


def test_mlflow_run_has_params_data_hash_metrics_and_onnx_model(project: Project) -> None:
    project.dvc("repro")
    script = """
import json, mlflow
from pathlib import Path
mlflow.set_tracking_uri(f"sqlite:///{Path('mlflow/mlflow.db').resolve()}")
run = mlflow.get_run(Path("mlflow/last_run_id").read_text().strip())
model = mlflow.artifacts.list_artifacts(run_id=run.info.run_id)
print(json.dumps({"params": run.data.params, "tags": run.data.tags,
                  "metrics": run.data.metrics, "artifacts": [a.path for a in model]}))
"""
    run = json.loads(project.run(project.python, "-c", script).stdout.splitlines()[-1])
    assert run["params"]["seed"] == "42"
    assert run["params"]["C"] == "1.0"
    assert len(run["tags"]["data.train_sha256"]) == 64
    metrics = json.loads((project.root / "metrics" / "metrics.json").read_text())
    assert run["metrics"]["accuracy"] == metrics["accuracy"]
    assert "gender.demographic_parity_difference" in run["metrics"]
    assert {"evaluation"} <= set(run["artifacts"])
    onnx_hash = run["tags"]["model.onnx_sha256"]
    served = json.loads(project.cli("smoke", "--json").stdout)
    assert served["good_request"]["status"] == 200
    assert served["bad_request"]["status"] == 422
    assert served["bad_request"]["detail"][0]["loc"] == ["rows", 0, "age"]
    readable = project.cli("smoke").stdout
    assert "good request -> 200, labels [1, 0, 0] as expected" in readable
    assert "bad request  -> 422, rows.0.age: Field required" in readable
    version = project.run(
        project.python,
        "-c",
        "from my_ml_project.serve.model import OnnxModel; from pathlib import Path; "
        "print(OnnxModel.load(Path('models/serving')).sha256)",
    )
    assert version.stdout.strip() == onnx_hash


def test_generated_project_tests_and_lint_pass(project: Project) -> None:
    result = project.run(project.python, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    summary = result.stdout.strip().splitlines()[-1]
    passed = int(summary.split(" passed")[0].split()[-1])
    assert passed >= 50
    assert "failed" not in summary
    assert "error" not in summary


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda rows: [{k: v for k, v in r.items() if k != "income"} for r in rows], "'income'"),
        (
            lambda rows: [
                {**r, "employment": "student"} if i == 7 else r for i, r in enumerate(rows)
            ],
            "'employment': unknown category 'student' at CSV lines 9",
        ),
        (
            lambda rows: [{**r, "age": ""} if i < 3 else r for i, r in enumerate(rows)],
            "'age': 3 missing values at CSV lines 2, 3, 4",
        ),
    ],
    ids=["missing-column", "unseen-category", "missing-values"],
)
def test_bad_data_stops_prepare_and_leaves_nothing_cached(
    project: Project, change: Callable[[Rows], Rows], expected: str
) -> None:
    edit_demo_data(project, change)
    result = project.dvc("repro", check=False)
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr
    assert not (project.root / "data" / "prepared").exists()
    lock = yaml.safe_load((project.root / "dvc.lock").read_text())
    assert list(lock["stages"]) == ["ingest"]


def test_model_trained_on_shuffled_labels_is_rejected(project: Project) -> None:
    def shuffle(rows: Rows) -> Rows:
        labels = [row["approved"] for row in rows]
        random.Random(0).shuffle(labels)  # noqa: S311 - reproducible test data, not crypto
        return [{**row, "approved": label} for row, label in zip(rows, labels, strict=True)]

    edit_demo_data(project, shuffle)
    result = project.dvc("repro", check=False)
    assert result.returncode != 0
    assert "model rejected by gate(s): thresholds" in result.stderr
    assert gate_status(project)["thresholds"] == "failed"
    assert verdict(project)["metrics"]["accuracy"] < 0.6
    report = (project.root / "reports" / "report.md").read_text()
    assert "❌ Model rejected" in report
    assert "❌ `accuracy`" in report


def test_injected_bias_is_caught_by_the_fairness_gate(project: Project) -> None:
    def deny_half_the_women(rows: Rows) -> Rows:
        return [
            {**row, "approved": "0"} if row["gender"] == "female" and index % 2 == 0 else row
            for index, row in enumerate(rows)
        ]

    edit_demo_data(project, deny_half_the_women)
    result = project.dvc("repro", check=False)
    assert result.returncode != 0
    assert gate_status(project)["fairness"] == "failed"
    fairness = json.loads((project.root / "metrics" / "fairness.json").read_text())
    assert fairness["gender"]["demographic_parity_difference"] > 0.1


def test_regression_against_the_committed_baseline_fails(project: Project) -> None:
    project.dvc("repro")
    project.run("git", "add", "-A")
    project.run("git", "commit", "-qm", "baseline model")
    params = project.root / "params.yaml"
    params.write_text(params.read_text().replace("C: 1.0", "C: 0.0005"))
    project.dvc("repro")  # still above the absolute thresholds, so the pipeline passes...
    result = project.cli("validate", "--baseline-ref", "HEAD", check=False)
    assert result.returncode == 1  # ...but it is worse than the committed model
    assert gate_status(project)["baseline"] == "failed"
    report = (project.root / "reports" / "report.md").read_text()
    assert "Baseline: git HEAD" in report
    assert "| accuracy |" in report
