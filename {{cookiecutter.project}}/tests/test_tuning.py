"""The tune stage's refusals and choices: a search that cannot run fails before Ray starts.

The search itself runs on Ray in the template's end-to-end tests; nothing here needs Ray.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package }} import frameworks
from {{ cookiecutter.package }}.config import (
    Params,
    Paths,
    StageError,
    TuneParams,
    validated,
)
from {{ cookiecutter.package }}.data import read_prepared
from {{ cookiecutter.package }}.schema import Schema
from {{ cookiecutter.package }}.stages import tune
from {{ cookiecutter.package }}.tuning import (
    EPOCHS,
    Trial,
    best,
    check,
)

FRAMEWORK = frameworks.load()
FIELDS = FRAMEWORK.Params.model_fields
# A train parameter that takes a plain number, and one that takes integers, of this framework.
TYPES = {
    name: spec.get("type")
    for name, spec in FRAMEWORK.Params.model_json_schema()["properties"].items()
}
NUMBER = next(name for name, kind in TYPES.items() if kind == "number")
INTEGER = next(name for name, kind in TYPES.items() if kind == "integer")


def settings(**changes: Any) -> dict[str, Any]:
    return {"enabled": True, "space": {NUMBER: {"uniform": [0.1, 0.2]}}, **changes}


def refusal(given: dict[str, Any], train: dict[str, Any]) -> str:
    with pytest.raises(StageError) as refused:
        check(validated(TuneParams, given, "params.yaml: tune"), FRAMEWORK.Params, train)
    return str(refused.value)


@pytest.mark.parametrize(
    ("distribution", "problem"),
    [
        ({"loguniform": [0, 1]}, "loguniform: the bounds must be positive, not 0.0"),
        ({"uniform": [2, 1]}, "uniform: the low bound 2.0 must be below the high 1.0"),
        ({"randint": [3, 3]}, "randint: the low bound 3 must be below the high 3"),
        ({"uniform": [0, 1], "choice": [1]}, "give exactly one of uniform, loguniform, randint"),
        ({}, "give exactly one of uniform, loguniform, randint or choice"),
        ({"choice": []}, "choice: List should have at least 1 item"),
    ],
)
def test_a_space_that_cannot_be_sampled_is_refused_naming_the_parameter(
    distribution: dict[str, Any], problem: str
) -> None:
    with pytest.raises(StageError) as refused:
        validated(TuneParams, settings(space={NUMBER: distribution}), "params.yaml: tune")
    (line,) = str(refused.value).splitlines()
    assert line.startswith(f"params.yaml: tune: space.{NUMBER}"), line
    assert problem in line


def test_tuning_on_with_nothing_to_search_is_refused() -> None:
    with pytest.raises(StageError, match="enabled with an empty space: name the train parameters"):
        validated(TuneParams, settings(space={}), "params.yaml: tune")


def test_a_parameter_the_framework_does_not_have_is_refused(params: Params) -> None:
    message = refusal(settings(space={"C_typo": {"choice": [1]}}), params.train)
    assert message.startswith("params.yaml: tune.space.C_typo: not a train parameter of this ")
    assert ", ".join(sorted(FIELDS)) in message


def test_a_value_the_framework_refuses_is_named(params: Params) -> None:
    message = refusal(settings(space={NUMBER: {"choice": [0.5, "many"]}}), params.train)
    assert message == (
        f"params.yaml: tune.space.{NUMBER}: {NUMBER}: "
        "Input should be a valid number, unable to parse string as a number"
    )


def test_fractions_for_an_integer_parameter_are_refused(params: Params) -> None:
    message = refusal(settings(space={INTEGER: {"uniform": [10, 20]}}), params.train)
    assert message == (
        f"params.yaml: tune.space.{INTEGER}: uniform samples fractions, {INTEGER} takes "
        "integers (use randint or choice)"
    )


def test_private_training_cannot_be_searched(params: Params) -> None:
    """Each trial would train on the data again: privacy spent that no ledger counts."""
    assert refusal(settings(), {**params.train, "dp_epsilon": 1.0}) == (
        "params.yaml: tune: every trial would train on the data with train.dp_epsilon and "
        "spend it again, which the privacy ledger does not count: tune without it"
    )


def test_early_stopping_needs_a_framework_that_trains_in_epochs(params: Params) -> None:
    given = settings(scheduler="asha")
    if EPOCHS in FIELDS:
        check(validated(TuneParams, given, "params.yaml: tune"), FRAMEWORK.Params, params.train)
    else:
        assert refusal(given, params.train) == (
            "params.yaml: tune.scheduler: asha stops trials between epochs, and this "
            "framework trains in one step: use fifo"
        )


@pytest.mark.parametrize(("metric", "chosen"), [("roc_auc", 1), ("log_loss", 2), ("accuracy", 0)])
def test_the_best_trial_maximizes_scores_minimizes_losses_and_ties_go_to_the_first(
    metric: str, chosen: int
) -> None:
    trials = [
        Trial(0, {"x": 0}, {"roc_auc": 0.8, "log_loss": 0.5, "accuracy": 0.9}),
        Trial(1, {"x": 1}, {"roc_auc": 0.9, "log_loss": 0.6, "accuracy": 0.9}),
        Trial(2, {"x": 2}, {"roc_auc": 0.7, "log_loss": 0.4, "accuracy": 0.9}),
    ]
    assert best(trials, metric).number == chosen


def test_training_reports_each_epoch_of_its_curves(
    params: Params, paths: Paths, schema: Schema
) -> None:
    """What early stopping listens to: one report per epoch, the curves' own entries."""
    features, target = read_prepared(paths.train, schema)
    train_params = validated(FRAMEWORK.Params, params.train, "params.yaml: train")
    reports: list[dict[str, float]] = []
    model = FRAMEWORK.fit(features, target, schema, train_params, params.seed, reports.append)
    assert reports == FRAMEWORK.curves(model)
    assert bool(reports) == (EPOCHS in FIELDS)


def test_tuning_off_writes_that_nothing_was_tuned(params: Params, tmp_path: Path) -> None:
    paths = Paths().at(tmp_path)
    tune.run(params.model_copy(update={"tune": TuneParams()}), paths)
    assert paths.tuned.read_text(encoding="utf-8").splitlines()[1:] == [
        "best: {}",
        "enabled: false",
        "stopped_early: 0",
        "trials: 0",
    ]
