"""``evaluate``: test-split metrics (accuracy, macro F1, ...) and DVC plot data."""

from __future__ import annotations

import logging

import mlflow

from .. import frameworks
from ..config import Paths
from ..files import write_json
from ..images import ImageParams, Images
from ..metrics import classification_metrics, write_plots
from ..schema import Schema
from ..tracking import pipeline_run

log = logging.getLogger(__name__)


def run(params: ImageParams, paths: Paths) -> None:
    """Score the classifier on the test split, write metrics and plots, log them to MLflow."""
    framework = frameworks.load()
    schema = Schema.load(paths.schema)
    test = Images.read(paths.test)
    probabilities = framework.predict_proba(framework.load(paths.model), test.pixels)
    scores = classification_metrics(test.labels, probabilities, schema)
    write_json(paths.metrics, scores)
    write_plots(test.labels, probabilities, schema, paths)
    with pipeline_run(paths):
        mlflow.log_metrics(scores)
        for path in (paths.metrics, paths.confusion, paths.roc):
            mlflow.log_artifact(str(path), artifact_path="evaluation")
    log.info("test metrics: %s", scores)
