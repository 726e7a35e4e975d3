"""``explain``: global explanations of the exported model (see :mod:`..explanations`).

Writes ``reports/explanations.json`` (``validate`` puts the top features in the report and
the model card) and ``reports/explanations.html``, and logs both to the pipeline's run.
"""

from __future__ import annotations

import logging

import mlflow

from .. import explanation_page
from ..config import PROJECT, Params, Paths
from ..data import read_prepared
from ..explanations import explain
from ..files import atomic_path, write_json
from ..serve.model import OnnxModel
from ..tracking import pipeline_run

log = logging.getLogger(__name__)


def run(params: Params, paths: Paths) -> None:
    """Explain the served model on the test split."""
    model = OnnxModel.load(paths.bundle)
    features, _ = read_prepared(paths.test, model.schema)
    result = explain(
        lambda columns: model.predict_columns(columns).probabilities,
        model.schema,
        features,
        params.explain,
        params.seed,
    )
    write_json(paths.explanations, result)
    with atomic_path(paths.explanations_page) as temporary:
        page = explanation_page.render(result, f"Explanations: {PROJECT} {model.sha256[:12]}")
        temporary.write_text(page, encoding="utf-8")
    with pipeline_run(paths):
        for path in (paths.explanations, paths.explanations_page):
            mlflow.log_artifact(str(path), artifact_path="explanations")
        for label, explained in result["classes"].items():
            importance = {item["feature"]: item["importance"] for item in explained["importance"]}
            mlflow.log_metrics({f"explain.{label}.{name}": v for name, v in importance.items()})
            log.info("class %s importance (Morris mu*): %s", label, importance)
