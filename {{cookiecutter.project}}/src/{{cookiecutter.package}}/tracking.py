"""MLflow tracking for the pipeline: one run per training, continued by later stages.

Embedded default: a SQLite store and artifact folder under ``mlflow/`` in the project.
``MLFLOW_TRACKING_URI`` (and ``MLFLOW_EXPERIMENT_NAME``) switch to a tracking server.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
from mlflow.exceptions import MlflowException

from .config import Paths

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = __package__


def _configure(paths: Paths) -> None:
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", DEFAULT_EXPERIMENT)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        mlflow.set_experiment(experiment)
        return
    paths.mlflow.mkdir(exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{(paths.mlflow / 'mlflow.db').resolve()}")
    if mlflow.get_experiment_by_name(experiment) is None:
        artifacts = (paths.mlflow / "artifacts").resolve().as_uri()
        mlflow.create_experiment(experiment, artifact_location=artifacts)
    mlflow.set_experiment(experiment)


@contextmanager
def pipeline_run(paths: Paths, *, new: bool = False) -> Iterator[mlflow.ActiveRun]:
    """Start the pipeline's run (``new``) or continue the one ``train`` started."""
    _configure(paths)
    recorded = paths.mlflow_run
    run_id = None if new or not recorded.exists() else recorded.read_text().strip()
    if run_id:
        try:
            mlflow.get_run(run_id)
        except MlflowException:
            log.warning("MLflow run %s not found in this store; starting a new run", run_id)
            run_id = None
    with mlflow.start_run(run_id=run_id) as run:
        recorded.parent.mkdir(parents=True, exist_ok=True)
        recorded.write_text(run.info.run_id + "\n")
        yield run
