"""The tune stage for real: Ray Tune on a local Ray, every trial in MLflow (SQLite), under DVC.

The refusals that need no Ray are the generated project's own tests (tests/test_tuning.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .baking import Project, failing_repro, fresh, install, switch_tuning_on
from .infra import free_port
from .test_pipeline import STAGES, ran, verdict

# Each search starts its own local Ray (2 CPUs, ~1.5 GB): one at a time, on one worker.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("ray")]

# The pipeline's MLflow run and the runs nested under it, as JSON.
RUNS = """
import json, mlflow
from pathlib import Path
mlflow.set_tracking_uri(f"sqlite:///{Path('mlflow/mlflow.db').resolve()}")
client = mlflow.MlflowClient()
parent = client.get_run(Path("mlflow/last_run_id").read_text().strip())
nested = client.search_runs(
    [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
)
def described(run):
    epochs = client.get_metric_history(run.info.run_id, "epoch")
    return {"params": run.data.params, "metrics": run.data.metrics,
            "epochs": max((point.value for point in epochs), default=0)}
print(json.dumps({"parent": described(parent), "trials": [described(run) for run in nested]}))
"""


def tuned(project: Project) -> dict:
    return yaml.safe_load((project.root / "models" / "tuned.yaml").read_text())


def runs(project: Project) -> dict:
    return json.loads(project.run(project.python, "-c", RUNS).stdout)


@pytest.fixture
def project(baked_default: Path, tmp_path: Path) -> Project:
    return install(fresh(baked_default, tmp_path / "out"), tmp_path / "venv")


def test_tuning_logs_every_trial_under_the_pipeline_run_and_train_uses_the_best(
    project: Project,
) -> None:
    switch_tuning_on(project.root, trials=4)
    assert ran(project.dvc("repro").stdout) == STAGES
    found = tuned(project)
    assert {key: found[key] for key in ("enabled", "metric", "trials", "stopped_early")} == {
        "enabled": True,
        "metric": "roc_auc",
        "trials": 4,
        "stopped_early": 0,
    }
    logged = runs(project)
    trials = logged["trials"]
    assert len(trials) == 4
    # The file's best is the best trial's sample and score, as MLflow recorded them.
    top = max(trials, key=lambda trial: trial["metrics"]["roc_auc"])
    assert top["params"] == {"C": str(found["best"]["C"])}
    assert top["metrics"]["roc_auc"] == found["score"]
    assert len({trial["params"]["C"] for trial in trials}) == 4
    # The pipeline's run: tune's summary, train's parameters (the best C), the test metrics.
    parent = logged["parent"]
    assert parent["params"]["tune.best.C"] == parent["params"]["C"] == str(found["best"]["C"])
    assert parent["params"]["tune.trials"] == "4"
    assert parent["metrics"]["tune.best_roc_auc"] == found["score"]
    assert parent["metrics"]["accuracy"] == verdict(project)["metrics"]["accuracy"]
    assert verdict(project)["passed"] is True
    card = (project.root / "reports" / "model_card.md").read_text()
    assert (
        f"- Hyper-parameter search: Ray Tune, 4 trials (0 stopped early), best roc_auc "
        f"{found['score']} on a validation share of the training split."
    ) in card
    assert f"`C={found['best']['C']}`" in card

    assert "Data and pipelines are up to date." in project.dvc("repro").stdout
    # The same seed searches the same samples and picks the same best.
    before = (project.root / "models" / "tuned.yaml").read_bytes()
    assert ran(project.dvc("repro", "--force", "--single-item", "tune").stdout) == ["tune"]
    assert (project.root / "models" / "tuned.yaml").read_bytes() == before
    assert "Data and pipelines are up to date." in project.dvc("repro").stdout


@pytest.mark.parametrize(
    ("space", "stage", "message"),
    [
        (
            {"C": {"loguniform": [0, 1]}},
            "ingest",  # params.yaml is checked whole, by the first stage
            "ERROR: params.yaml: tune.space.C: Value error, loguniform: the bounds must be "
            "positive, not 0.0",
        ),
        (
            {"max_iter": {"uniform": [100, 500]}},
            "tune",
            "ERROR: params.yaml: tune.space.max_iter: uniform samples fractions, max_iter takes "
            "integers (use randint or choice)",
        ),
    ],
)
def test_a_search_that_cannot_run_stops_the_pipeline_naming_the_parameter(
    project: Project, space: dict, stage: str, message: str
) -> None:
    switch_tuning_on(project.root, space=space)
    failed = failing_repro(project)
    assert ran(failed.stdout)[-1] == stage
    assert [line for line in failed.stderr.splitlines() if line.startswith("ERROR: params")] == [
        message
    ]
    assert not (project.root / "models" / "tuned.yaml").exists()


@pytest.mark.parametrize("framework", ["pytorch", "tensorflow"])
def test_early_stopping_ends_trailing_network_trials_and_picks_among_the_finished(
    framework: str, bakes: dict[str, Path], tmp_path: Path
) -> None:
    project = install(fresh(bakes[framework], tmp_path / "out"), tmp_path / "venv")
    # One trial at a time: the order trials report in, and so what asha stops, is fixed.
    switch_tuning_on(project.root, trials=4, scheduler="asha", grace_period=2, concurrency=1)
    assert ran(project.dvc("repro", "tune").stdout) == ["ingest", "prepare", "tune"]
    found = tuned(project)
    trials = runs(project)["trials"]
    assert len(trials) == 4
    finished = [trial for trial in trials if "roc_auc" in trial["metrics"]]
    stopped = [trial for trial in trials if "roc_auc" not in trial["metrics"]]
    assert found["stopped_early"] == len(stopped) > 0
    max_epochs = yaml.safe_load((project.root / "params.yaml").read_text())["train"]["max_epochs"]
    for trial in stopped:  # stopped at a rung: after 2, 4, 8, ... epochs
        assert trial["epochs"] in {2, 4, 8, 16, 32} and trial["epochs"] < max_epochs
    top = max(finished, key=lambda trial: trial["metrics"]["roc_auc"])
    assert top["metrics"]["roc_auc"] == found["score"]
    assert {name: json.loads(value) for name, value in top["params"].items()} == found["best"]


@pytest.fixture
def ray_cluster(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A Ray head started like a cluster's (``ray start``), reached through Ray Client: its
    address and its temp dir (where its logs are).

    Its session directory holds the virtualenv Ray builds for the project's pins (~4 GB with
    torch): it lives in a directory of its own, removed afterwards. Short, under /tmp, because
    Ray's socket paths must fit in 107 characters.
    """
    ray = str(Path(sys.executable).parent / "ray")
    client_port = free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    started = subprocess.run(
        [ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={free_port()}",
         f"--ray-client-server-port={client_port}", "--num-cpus=2", "--include-dashboard=false",
         "--object-store-memory=200000000", "--disable-usage-stats", f"--temp-dir={temp_dir}"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        yield f"ray://127.0.0.1:{client_port}", temp_dir
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, check=False, timeout=120)
        shutil.rmtree(temp_dir, ignore_errors=True)


def client_server_logs(temp_dir: Path) -> str:
    """The head's Ray Client server logs: why a connection failed (they go with the temp dir)."""
    logs = sorted(temp_dir.glob("session_*/logs/ray_client_server*"))
    return "\n".join(f"== {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs)


def test_a_cluster_searches_the_same_samples_with_the_projects_pinned_environment(
    project: Project, ray_cluster: tuple[str, Path]
) -> None:
    """RAY_ADDRESS sends the search to a cluster: the package is shipped, the training
    dependencies are installed there at this machine's versions, the result is the local one."""
    switch_tuning_on(project.root, trials=2)
    assert ran(project.dvc("repro", "tune").stdout) == ["ingest", "prepare", "tune"]
    local = tuned(project)
    # Token authentication is on for clusters `ray start` makes (~/.ray/auth_token).
    address, temp_dir = ray_cluster
    env = {**project.env, "RAY_ADDRESS": address, "RAY_AUTH_MODE": "token"}
    remote = Project(project.root, env)
    searched = remote.dvc("repro", "--force", "--single-item", "tune", check=False)
    assert searched.returncode == 0, searched.stderr[-3000:] + client_server_logs(temp_dir)
    assert tuned(project) == local
    assert len(runs(project)["trials"]) == 2


def test_a_remote_cluster_cannot_log_to_this_machines_mlflow_file(project: Project) -> None:
    switch_tuning_on(project.root, trials=2, address="ray://ray-head.example:10001")
    failed = failing_repro(project)
    assert ran(failed.stdout)[-1] == "tune"
    assert [line for line in failed.stderr.splitlines() if line.startswith("ERROR: params")] == [
        "ERROR: params.yaml: tune.address: the search runs on the cluster at "
        "ray://ray-head.example:10001, which cannot log to this machine's MLflow store "
        f"(sqlite:///{(project.root / 'mlflow' / 'mlflow.db').resolve()}): set "
        "MLFLOW_TRACKING_URI to an MLflow server"
    ]
