"""``train``: fit the model on the training split and start the pipeline's MLflow run.

The parameters are ``params.yaml``'s ``train`` section with what ``tune`` found over it (when
tuning is on; ``tune`` then started the run, and ``train`` continues it). Per-epoch curves go
to MLflow and to ``logs/`` (``make tensorboard`` shows them).
"""

from __future__ import annotations

import logging

import mlflow

from .. import curves, frameworks
from ..config import Params, Paths, Tuned, validated
from ..data import read_prepared
from ..files import atomic_dir, sha256
from ..schema import Schema
from ..tracking import pipeline_run

log = logging.getLogger(__name__)


def run(params: Params, paths: Paths) -> None:
    """Fit, save, and log params, the training data hash and training accuracy."""
    framework = frameworks.load()
    tuned = Tuned.load(paths.tuned)
    where = "params.yaml: train" + (f" with {paths.tuned}" if tuned.best else "")
    train_params = validated(framework.Params, tuned.over(params.train), where)
    schema = Schema.load(paths.schema)
    features, target = read_prepared(paths.train, schema)
    model = framework.fit(features, target, schema, train_params, params.seed)
    with atomic_dir(paths.model) as folder:
        framework.save(model, folder)
    predicted = schema.target.labels(framework.predict_proba(model, features))
    accuracy = float((predicted == target.to_numpy()).mean())
    with pipeline_run(paths, new=not tuned.enabled) as active:
        mlflow.log_params({"seed": params.seed, "test_size": params.prepare.test_size})
        mlflow.log_params(train_params.model_dump())
        mlflow.set_tags({"data.train_sha256": sha256(paths.train), "framework": framework.NAME})
        mlflow.log_metric("train_accuracy", accuracy)
        with atomic_dir(paths.logs) as folder:
            curves.log(framework.curves(model), folder)
        log.info(
            "trained on %d rows, train accuracy %.4f, MLflow run %s",
            len(target),
            accuracy,
            active.info.run_id,
        )
