"""``tune``: search the ``train`` section's hyper-parameters with Ray Tune, when switched on.

On (``params.yaml: tune.enabled``), it starts the pipeline's MLflow run, logs every trial as
a run nested under it, and writes the best sample to ``models/tuned.yaml``; ``train`` then
continues that run and trains with those values over ``params.yaml``'s ``train`` section.
Off, it writes that nothing was tuned and imports no Ray.
"""

from __future__ import annotations

import logging

import mlflow
from sklearn.model_selection import train_test_split

from .. import frameworks
from ..config import Params, Paths, Tuned
from ..data import read_prepared
from ..schema import Schema
from ..tracking import pipeline_run
from ..tuning import Split, best, check, search

log = logging.getLogger(__name__)


def run(params: Params, paths: Paths) -> None:
    """Search, log the trials and write the best train parameters."""
    settings = params.tune
    if not settings.enabled:
        Tuned(enabled=False).write(paths.tuned)
        log.info("tuning is off (params.yaml: tune.enabled); train uses params.yaml as it is")
        return
    framework = frameworks.load()
    check(settings, framework.Params, params.train)
    schema = Schema.load(paths.schema)
    features, target = read_prepared(paths.train, schema)
    fit_rows, val_rows, fit_target, val_target = train_test_split(
        features,
        target,
        test_size=settings.validation_fraction,
        random_state=params.seed,
        stratify=target,
    )
    split = Split(schema, fit_rows, fit_target, val_rows, val_target)
    with pipeline_run(paths, new=True) as parent:
        experiment = mlflow.get_experiment(parent.info.experiment_id).name
        where = (mlflow.get_tracking_uri(), experiment, parent.info.run_id)
        finished = search(settings, params.train, split, params.seed, where)
        chosen = best(finished, settings.metric)
        mlflow.log_params({"tune.metric": settings.metric, "tune.trials": settings.trials})
        mlflow.log_params({f"tune.best.{name}": value for name, value in chosen.config.items()})
        mlflow.log_metric(f"tune.best_{settings.metric}", chosen.scores[settings.metric])
    Tuned(
        enabled=True,
        metric=settings.metric,
        score=chosen.scores[settings.metric],
        trials=settings.trials,
        stopped_early=settings.trials - len(finished),
        best=chosen.config,
    ).write(paths.tuned)
    log.info(
        "tuned %d trials (%d stopped early) on %d rows: best %s %.4f with %s",
        settings.trials,
        settings.trials - len(finished),
        len(fit_target),
        settings.metric,
        chosen.scores[settings.metric],
        chosen.config,
    )
