"""MLflow tracking for the pipeline: one run per training, continued by later stages.

Embedded default: a SQLite store and artifact folder under ``mlflow/`` in the project.
``MLFLOW_TRACKING_URI`` (and ``MLFLOW_EXPERIMENT_NAME``) switch to a tracking server.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from .config import Paths

log = logging.getLogger(__name__)

LOCAL_STORE = Path("mlflow")
DEFAULT_EXPERIMENT = __package__


def _configure() -> None:
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", DEFAULT_EXPERIMENT)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        mlflow.set_experiment(experiment)
        return
    LOCAL_STORE.mkdir(exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{(LOCAL_STORE / 'mlflow.db').resolve()}")
    if mlflow.get_experiment_by_name(experiment) is None:
        artifacts = (LOCAL_STORE / "artifacts").resolve().as_uri()
        mlflow.create_experiment(experiment, artifact_location=artifacts)
    mlflow.set_experiment(experiment)


@contextmanager
def pipeline_run(*, new: bool = False) -> Iterator[mlflow.ActiveRun]:
    """Start the pipeline's run (``new``) or continue the one ``train`` started."""
    _configure()
    run_id = None if new or not Paths.mlflow_run.exists() else Paths.mlflow_run.read_text().strip()
    if run_id:
        try:
            mlflow.get_run(run_id)
        except MlflowException:
            log.warning("MLflow run %s not found in this store; starting a new run", run_id)
            run_id = None
    with mlflow.start_run(run_id=run_id) as run:
        Paths.mlflow_run.parent.mkdir(parents=True, exist_ok=True)
        Paths.mlflow_run.write_text(run.info.run_id + "\n")
        yield run
