"""The ``train`` stage: fit the model on the training split and start its MLflow run."""

from __future__ import annotations

import logging

import mlflow

from . import frameworks
from .config import Params, Paths
from .data import read_prepared
from .files import atomic_path, sha256
from .schema import Schema
from .tracking import pipeline_run

log = logging.getLogger(__name__)


def train(params: Params, schema: Schema) -> None:
    """Fit, save and log params, the training data hash and training accuracy."""
    features, target = read_prepared(Paths.train, schema)
    model = frameworks.fit(features, target, schema, params.train, params.seed)
    with atomic_path(Paths.model) as temporary:
        frameworks.save(model, temporary)
    predicted = schema.target.labels(frameworks.predict_proba(model, features))
    accuracy = float((predicted == target.to_numpy()).mean())
    with pipeline_run(new=True) as run:
        mlflow.log_params({"seed": params.seed, "test_size": params.prepare.test_size})
        mlflow.log_params(params.train.model_dump())
        mlflow.set_tags({"data.train_sha256": sha256(Paths.train), "framework": frameworks.NAME})
        mlflow.log_metric("train_accuracy", accuracy)
        log.info(
            "trained on %d rows, train accuracy %.4f, MLflow run %s",
            len(target),
            accuracy,
            run.info.run_id,
        )
