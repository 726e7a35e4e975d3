"""``evaluate``: test-split metrics, DVC plot data and per-group fairness metrics."""

from __future__ import annotations

import logging

import mlflow
import numpy as np

from .. import frameworks
from ..config import Params, Paths
from ..data import read_prepared
from ..files import write_json
from ..metrics import DIFFERENCES, classification_metrics, fairness_metrics, write_plots
from ..schema import Schema
from ..tracking import pipeline_run

log = logging.getLogger(__name__)


def run(params: Params, paths: Paths) -> None:
    """Score the model on the test split, write metrics and plots, log them to MLflow."""
    framework = frameworks.load()
    schema = Schema.load(paths.schema)
    features, target = read_prepared(paths.test, schema)
    model = framework.load(paths.model)
    probabilities = framework.predict_proba(model, features)
    truth = target.to_numpy()
    scores = classification_metrics(truth, probabilities, schema)

    def fairness_of(probabilities: np.ndarray) -> dict:
        labels = schema.target.labels(probabilities)
        positive = schema.target.classes[-1]
        return fairness_metrics(truth, labels, features[schema.sensitive], positive)

    fairness = fairness_of(probabilities)
    unmitigated = framework.unmitigated(model)
    if unmitigated is not None:  # the same differences before mitigation, for the gate's report
        before = fairness_of(framework.predict_proba(unmitigated, features))
        for feature, values in fairness.items():
            values["unmitigated"] = {name: before[feature][name] for name in DIFFERENCES}
    write_json(paths.metrics, scores)
    write_json(paths.fairness, fairness)
    write_plots(truth, probabilities, schema, paths)
    with pipeline_run(paths):
        mlflow.log_metrics(scores)
        for feature, values in fairness.items():
            for name in DIFFERENCES:
                mlflow.log_metric(f"{feature}.{name}", values[name])
                if "unmitigated" in values:
                    mlflow.log_metric(f"{feature}.{name}.unmitigated", values["unmitigated"][name])
        for path in (paths.metrics, paths.fairness, paths.confusion, paths.roc):
            mlflow.log_artifact(str(path), artifact_path="evaluation")
    log.info("test metrics: %s", scores)
