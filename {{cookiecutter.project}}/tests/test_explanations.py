"""The explainers recover what a model of known form depends on, and the outputs say it.

Each model here is a plain predict function over the project's own schema and test split,
the same black-box interface the served ONNX model is explained through.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package }}.config import ExplainParams, StageError, validated
from {{ cookiecutter.package }}.explanation_page import render as render_page
from {{ cookiecutter.package }}.explanations import explain
from {{ cookiecutter.package }}.report import explanation_table
from {{ cookiecutter.package }}.schema import CategoryColumn, Schema

from .conftest import SCHEMA

NUMERIC = [name for name in SCHEMA.features if not isinstance(SCHEMA.columns[name], CategoryColumn)]
CATEGORICAL = [name for name in SCHEMA.features if name not in NUMERIC]
FAST = ExplainParams(trajectories=100)  # every test row (up to 1,000), fewer trajectories


def probabilities(score: np.ndarray, classes: int) -> np.ndarray:
    """The last class gets sigmoid(score); the others share the rest."""
    last = 1 / (1 + np.exp(-score))
    return np.column_stack([*[(1 - last) / (classes - 1)] * (classes - 1), last])


def depends_only_on(name: str, features: pd.DataFrame, schema: Schema) -> Any:
    """A model whose probability rises with one numeric feature and ignores the rest."""
    center, spread = features[name].mean(), features[name].std()

    def predict(columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        score = (np.asarray(columns[name], dtype=float) - center) / spread
        return probabilities(score, len(schema.target.classes))

    return predict


@pytest.mark.skipif(not NUMERIC, reason="data/schema.yaml declares no numeric feature")
def test_features_a_model_ignores_have_zero_importance_and_flat_shapes(
    test_split: tuple[pd.DataFrame, pd.Series], schema: Schema
) -> None:
    features, _ = test_split
    driver = NUMERIC[-1]  # not the first feature: the ranking must put it first
    result = explain(depends_only_on(driver, features, schema), schema, features, FAST, seed=0)
    explained = result["classes"][str(schema.target.classes[-1])]
    importance = {item["feature"]: item["importance"] for item in explained["importance"]}
    assert explained["importance"][0]["feature"] == driver
    assert importance[driver] > 0
    assert {name: importance[name] for name in schema.features if name != driver} == {
        name: 0.0 for name in schema.features if name != driver
    }
    rising = explained["shape"][driver]["probability"]
    assert rising == sorted(rising) and rising[0] < rising[-1]
    for name in schema.features:
        if name != driver:
            assert len(set(explained["shape"][name]["probability"])) == 1, name
    assert result["rows"] == min(FAST.rows, len(features))


@pytest.mark.skipif(not NUMERIC, reason="data/schema.yaml declares no numeric feature")
def test_the_model_is_only_asked_about_values_inside_the_observed_ranges(
    test_split: tuple[pd.DataFrame, pd.Series], schema: Schema
) -> None:
    features, _ = test_split
    model = depends_only_on(NUMERIC[0], features, schema)
    asked: dict[str, list[float]] = {name: [] for name in NUMERIC}

    def predict(columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        for name in NUMERIC:
            asked[name].extend(columns[name])
        return model(columns)

    explain(predict, schema, features, FAST, seed=0)
    for name in NUMERIC:
        low, high = features[name].min(), features[name].max()
        slack = 1e-9 * max(1.0, abs(high))  # scaling [0, 1] back to [low, high] rounds
        assert low - slack <= min(asked[name]) and max(asked[name]) <= high + slack, name


def test_categories_reach_the_model_as_categories_and_the_shape_names_them(
    test_split: tuple[pd.DataFrame, pd.Series], schema: Schema
) -> None:
    """Every category feature the schema declares (none: nothing to check)."""
    features, _ = test_split
    categories: dict[str, list[str]] = {
        name: schema.columns[name].categories  # type: ignore[union-attr]
        for name in CATEGORICAL
    }

    def predict(columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        score = np.zeros(len(next(iter(columns.values()))))
        for name, names in categories.items():
            unknown = set(columns[name]) - set(names)
            assert not unknown, f"the model received {unknown} for {name}"
            score += [names.index(value) for value in columns[name]]
        return probabilities(score, len(schema.target.classes))

    explained = explain(predict, schema, features, FAST, seed=0)["classes"]
    shapes = explained[str(schema.target.classes[-1])]["shape"]
    for name, names in categories.items():
        assert shapes[name]["values"] == sorted(set(features[name]), key=names.index), name
        assert shapes[name]["probability"] == sorted(shapes[name]["probability"]), name


def test_a_model_no_feature_moves_has_zero_importance_everywhere(
    test_split: tuple[pd.DataFrame, pd.Series], schema: Schema
) -> None:
    features, _ = test_split

    def constant(columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        rows = len(columns[schema.features[0]])
        return probabilities(np.zeros(rows), len(schema.target.classes))

    explained = explain(constant, schema, features, FAST, seed=0)["classes"]
    for result in explained.values():
        importance = [item["importance"] for item in result["importance"]]
        assert importance == [0.0] * len(schema.features)
        assert [item["feature"] for item in result["importance"]] == sorted(schema.features)


def test_every_class_of_a_multiclass_model_is_explained(
    test_split: tuple[pd.DataFrame, pd.Series], schema: Schema
) -> None:
    features, _ = test_split
    three = Schema.model_validate(
        {**schema.model_dump(mode="json"), "target": {"name": "t", "classes": [0, 1, 2]}}
    )
    result = explain(depends_only_on(NUMERIC[0], features, three), three, features, FAST, seed=0)
    assert list(result["classes"]) == ["0", "1", "2"]
    # A binary model is explained once, for its positive class.
    binary = explain(depends_only_on(NUMERIC[0], features, schema), schema, features, FAST, 0)
    assert list(binary["classes"]) == [str(schema.target.classes[-1])]


def test_the_same_seed_gives_the_same_explanations_and_another_seed_other_samples(
    test_split: tuple[pd.DataFrame, pd.Series], schema: Schema
) -> None:
    features, _ = test_split
    predict = depends_only_on(NUMERIC[0], features, schema)
    first = explain(predict, schema, features, FAST, seed=1)
    assert explain(predict, schema, features, FAST, seed=1) == first
    assert explain(predict, schema, features, FAST, seed=2) != first


def test_morris_needs_an_even_number_of_levels() -> None:
    with pytest.raises(StageError, match=r"^params.yaml: explain: levels: .*must be even"):
        validated(ExplainParams, {"levels": 3}, "params.yaml: explain")


def test_the_report_lists_the_top_features_and_the_page_draws_every_feature(
    test_split: tuple[pd.DataFrame, pd.Series], schema: Schema
) -> None:
    features, _ = test_split
    result = explain(depends_only_on(NUMERIC[0], features, schema), schema, features, FAST, 0)
    explained = result["classes"][str(schema.target.classes[-1])]
    table = explanation_table(result, top=2)
    rows = [line.split(" | ")[0].removeprefix("| ") for line in table if line.startswith("| ")]
    assert rows[2:] == [item["feature"] for item in explained["importance"][:2]]

    page = render_page(result, "Explanations <test>")
    assert "<title>Explanations &lt;test&gt;</title>" in page
    assert re.findall(r"<figcaption>(.*?)</figcaption>", page) == list(explained["shape"])
    charts = re.findall(r"<svg.*?</svg>", page)
    assert len(charts) == 1 + len(schema.features)
    for chart in charts:
        ET.fromstring(chart)  # well-formed SVG, or this raises
    assert "<script" not in page and "http" not in page  # self-contained
