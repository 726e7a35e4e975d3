"""Hyper-parameter search with Ray Tune: the search space, the trial, the choice of the best.

Ray is imported only when a search runs, so a project with ``tune`` off needs no Ray.
Every trial trains the project's framework with one sample of ``params.yaml: tune.space``
over the ``train`` section, on the training split minus a stratified validation share, and
is scored on that share with the project's own metrics. The samples come from a generator
seeded by ``seed`` and each training is seeded too, so the same seed finds the same best.
"""

from __future__ import annotations

import logging
import os
import tempfile
import typing
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pydantic import BaseModel

from . import frameworks
from .config import PROJECT, Distribution, StageError, TuneParams, validated
from .metrics import classification_metrics
from .schema import Schema

log = logging.getLogger(__name__)

EPOCHS = "max_epochs"  # the train parameter of frameworks that train in epochs
# What a trial reports last, on the validation share: the metrics tune.metric may name.
SCORES = set(typing.get_args(TuneParams.model_fields["metric"].annotation))
LOSSES = {"log_loss"}  # metrics a search minimizes; it maximizes the others
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Ray's local defaults on a small machine: one CPU per trial, no dashboard, a small object store;
# "local" starts a Ray of its own even when `ray start` left one running on this machine.
LOCAL_RAY = {
    "address": "local",
    "num_cpus": 2,
    "include_dashboard": False,
    "object_store_memory": 200_000_000,
}


@dataclass(frozen=True)
class Split:
    """What every trial trains on and is scored on."""

    schema: Schema
    fit_rows: pd.DataFrame
    fit_target: pd.Series
    val_rows: pd.DataFrame
    val_target: pd.Series


@dataclass(frozen=True)
class Trial:
    """One finished trial: its sample of the space and its validation metrics."""

    number: int
    config: dict[str, Any]
    scores: dict[str, float]


def check(settings: TuneParams, params: type[BaseModel], train: dict) -> None:
    """Refuse a search the framework cannot run, naming the parameter.

    Every bound and choice must be a valid value of its ``train`` parameter, a continuous
    distribution cannot feed an integer parameter, early stopping needs epochs, and private
    training cannot be searched (each trial would spend the privacy budget).

    Raises:
        StageError: ``params.yaml: tune.<name>: <problem>``.
    """
    fields = params.model_fields
    if train.get("dp_epsilon") is not None or "dp_epsilon" in settings.space:
        raise StageError(
            "params.yaml: tune: every trial would train on the data with train.dp_epsilon and "
            "spend it again, which the privacy ledger does not count: tune without it"
        )
    if settings.scheduler == "asha" and EPOCHS not in fields:
        raise StageError(
            "params.yaml: tune.scheduler: asha stops trials between epochs, and this "
            "framework trains in one step: use fifo"
        )
    for name, distribution in settings.space.items():
        where = f"params.yaml: tune.space.{name}"
        if name not in fields:
            known = ", ".join(sorted(fields))
            raise StageError(f"{where}: not a train parameter of this framework ({known})")
        continuous = distribution.kind in ("uniform", "loguniform")
        if continuous and _is_integer(fields[name].annotation):
            raise StageError(
                f"{where}: {distribution.kind} samples fractions, {name} takes integers "
                "(use randint or choice)"
            )
        for value in distribution.values:
            validated(params, {**train, name: value}, where)


def _is_integer(annotation: object) -> bool:
    # PositiveInt is Annotated[int, ...]: look through the metadata.
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation is int


def best(trials: list[Trial], metric: str) -> Trial:
    """The trial with the best ``metric``; ties go to the earliest, so the choice is stable."""
    sign = 1 if metric in LOSSES else -1
    return min(trials, key=lambda trial: (sign * trial.scores[metric], trial.number))


def search(
    settings: TuneParams,
    train: dict[str, Any],
    split: Split,
    seed: int,
    mlflow_parent: tuple[str, str, str],
) -> list[Trial]:
    """Run ``settings.trials`` trials on Ray; every trial is an MLflow run under the parent.

    ``mlflow_parent`` is the tracking URI, the experiment and the run the trials nest under.
    Returns the trials that ran to the end (early stopping ends the others).

    Raises:
        StageError: when a trial fails, with its error.
    """
    # Tune's console report would repeat what the stage logs; its errors still show.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    try:
        import ray
        from ray import tune
        from ray.air.integrations.mlflow import MLflowLoggerCallback
        from ray.tune.search.basic_variant import BasicVariantGenerator
    except ModuleNotFoundError:
        raise StageError(
            "params.yaml: tune.enabled: Ray is not installed; `make install` installs "
            "requirements/tune.txt when tune is on"
        ) from None

    tracking_uri, experiment, parent = mlflow_parent
    _connect(ray, settings.address or os.environ.get("RAY_ADDRESS"), tracking_uri)
    space = {name: _sampler(tune, distribution) for name, distribution in settings.space.items()}
    trainable = tune.with_parameters(trial, split=split, train=train, seed=seed)
    try:
        with tempfile.TemporaryDirectory(prefix="tune-") as storage:
            tuner = tune.Tuner(
                tune.with_resources(trainable, {"cpu": 1}),
                param_space=space,
                tune_config=tune.TuneConfig(
                    num_samples=settings.trials,
                    search_alg=BasicVariantGenerator(
                        random_state=seed, max_concurrent=settings.concurrency
                    ),
                    scheduler=_scheduler(settings, train),
                ),
                run_config=tune.RunConfig(
                    name="tune",
                    storage_path=storage,
                    verbose=0,
                    callbacks=[
                        MLflowLoggerCallback(
                            tracking_uri=tracking_uri,
                            experiment_name=experiment,
                            tags={"mlflow.parentRunId": parent},
                            save_artifact=False,
                        )
                    ],
                ),
            )
            results = tuner.fit()
    finally:
        ray.shutdown()
    if results.errors:
        raise StageError(f"tune: {len(results.errors)} trial(s) failed: {results.errors[0]}")
    ordered = sorted(results, key=lambda result: result.metrics["trial_id"])
    return [
        Trial(number, dict(result.config), {key: result.metrics[key] for key in SCORES})
        for number, result in enumerate(ordered)
        if result.metrics.keys() >= SCORES  # the others were stopped early
    ]


def _connect(ray: Any, address: str | None, tracking_uri: str) -> None:
    """Start a local Ray, or connect to the cluster at ``address``.

    Through Ray Client (``ray://``) the search itself runs on the cluster's head, and so does
    the MLflow logging of its trials: a store that is a file on this machine stays out of its
    reach unless the cluster runs here too.
    """
    if not address:
        ray.init(**LOCAL_RAY, log_to_driver=False, logging_level=logging.WARNING)
        return
    url = urlsplit(address)
    local_store = urlsplit(tracking_uri).scheme in ("", "file", "sqlite")
    if url.scheme == "ray" and url.hostname not in LOOPBACK and local_store:
        raise StageError(
            f"params.yaml: tune.address: the search runs on the cluster at {address}, which "
            f"cannot log to this machine's MLflow store ({tracking_uri}): set "
            "MLFLOW_TRACKING_URI to an MLflow server"
        )
    ray.init(address=address, runtime_env=cluster_environment(), log_to_driver=False)


def cluster_environment() -> dict[str, Any]:
    """What a cluster's workers need to run a trial.

    This package, shipped, and its training dependencies at the versions this machine trains
    with (Ray installs them in a virtualenv on each node).
    """
    return {"py_modules": [str(Path(__file__).resolve().parent)], "pip": training_pins()}


def training_pins() -> list[str]:
    """``name==version`` of the project's dependencies and its ``serve`` and ``train`` extras."""
    pins = set()
    for spec in metadata.requires(PROJECT) or []:
        requirement = Requirement(spec)
        if canonicalize_name(requirement.name) == PROJECT:
            continue  # the train extra names the serve extra, whose requirements are read here
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": e}) for e in ("", "serve", "train")):
            pins.add(f"{requirement.name}=={metadata.version(requirement.name)}")
    return sorted(pins)


def _scheduler(settings: TuneParams, train: dict[str, Any]) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if settings.scheduler == "fifo":
        return FIFOScheduler()
    sampled = settings.space.get(EPOCHS)
    return ASHAScheduler(
        time_attr="epoch",
        metric="val_loss",
        mode="min",
        max_t=max(sampled.values) if sampled else train[EPOCHS],
        grace_period=settings.grace_period,
        reduction_factor=2,  # successive halving: half of a rung goes on (Ray's default keeps 1/4)
        stop_last_trials=False,  # a trial's last report, its scores, comes after its epochs
    )


def _sampler(tune: Any, distribution: Distribution) -> Any:
    values = distribution.values
    if distribution.kind == "choice":
        return tune.choice(values)
    return getattr(tune, distribution.kind)(*values)


def trial(config: dict[str, Any], *, split: Split, train: dict[str, Any], seed: int) -> None:
    """Train one sample of the space and report its validation metrics to Tune.

    Each epoch's curve is reported as it ends, for early stopping and MLflow; the last report
    adds the scores on the validation share to the last epoch's curve (the scheduler expects
    its metric in every report).
    """
    from ray import tune

    last: dict[str, float] = {}

    def report_epoch(curve: dict[str, float]) -> None:
        last.update(curve, epoch=last.get("epoch", 0) + 1)
        tune.report(dict(last))

    framework = frameworks.load()
    params = framework.Params.model_validate({**train, **config})
    model = framework.fit(
        split.fit_rows, split.fit_target, split.schema, params, seed, progress=report_epoch
    )
    probabilities = framework.predict_proba(model, split.val_rows)
    scores = classification_metrics(split.val_target.to_numpy(), probabilities, split.schema)
    tune.report({**last, **scores})
