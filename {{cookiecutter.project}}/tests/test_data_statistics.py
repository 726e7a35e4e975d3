"""The report's statistics of the training split: exact with privacy off, OpenDP releases on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package }}.config import PrivacyParams, StageError
from {{ cookiecutter.package }}.data_statistics import describe
from {{ cookiecutter.package }}.report import statistics_table
from {{ cookiecutter.package }}.schema import CategoryColumn, NumericColumn, Schema
from {{ cookiecutter.package }}.tabular import fitted_on_bounds

PRIVATE = PrivacyParams(enabled=True, statistics_epsilon=0.5)


def exact_counts(values: pd.Series, labels: list[str]) -> dict[str, int]:
    counted = values.astype(str).value_counts()
    return {label: int(counted.get(label, 0)) for label in labels}


def test_with_privacy_off_every_statistic_is_the_datas_own(
    training_split: pd.DataFrame, schema: Schema, bounded: Schema
) -> None:
    released = describe(training_split, schema, PrivacyParams())
    assert (released["private"], released["epsilon"], released["delta"]) == (False, None, None)
    assert released["rows"] == len(training_split)
    target = schema.target
    classes = [str(label) for label in target.classes]
    counted = exact_counts(training_split[target.name], classes)
    assert released["columns"][target.name]["counts"] == counted
    for name, column in schema.columns.items():
        described = released["columns"][name]
        if isinstance(column, CategoryColumn):
            assert described["counts"] == exact_counts(training_split[name], column.categories)
            continue
        assert described["mean"] == round(training_split[name].mean(), 6)
        ranged = bounded.columns[name]  # declared, or observed where the schema has none
        counts, edges = np.histogram(training_split[name], bins=10, range=(ranged.min, ranged.max))
        assert described["counts"] == counts.tolist()
        assert described["edges"] == [round(edge, 6) for edge in edges.tolist()]


def flattened(released: dict[str, Any]) -> list[float]:
    values = [released["rows"]]
    for column in released["columns"].values():
        counts = column["counts"]
        values += [*(counts.values() if isinstance(counts, dict) else counts)]
        values += [column["mean"]] if "mean" in column else []
    return values


def test_with_privacy_on_every_statistic_is_noisy_and_the_epsilon_is_opendps(
    training_split: pd.DataFrame, bounded: Schema
) -> None:
    exact = flattened(describe(training_split, bounded, PrivacyParams()))
    first, second = (describe(training_split, bounded, PRIVATE) for _ in range(2))
    assert (first["private"], first["delta"]) == (True, 0.0)
    # Every released value spends an equal share; OpenDP's maps add up to the whole.
    assert first["epsilon"] == pytest.approx(0.5, abs=1e-9)
    noisy = flattened(first)
    assert noisy != exact
    assert flattened(second) != noisy  # fresh noise each release: it is not seeded
    # Each value's noise: Laplace with scale sensitivity / (0.5 / values), sensitivity 1 for
    # counts; beyond 20 scales happens with probability 2e-9 per value.
    shares = sum(2 if "mean" in column else 1 for column in first["columns"].values()) + 1
    assert abs(first["rows"] - len(training_split)) < 20 * shares / 0.5


def test_privacy_refuses_a_numeric_column_without_a_declared_range(
    training_split: pd.DataFrame, bounded: Schema
) -> None:
    name, column = next((n, c) for n, c in bounded.columns.items() if isinstance(c, NumericColumn))
    columns = {**bounded.columns, name: column.model_copy(update={"min": None, "max": None})}
    unbounded = bounded.model_copy(update={"columns": columns})
    with pytest.raises(StageError) as refused:
        describe(training_split, unbounded, PRIVATE)
    assert str(refused.value) == (
        f"data/schema.yaml: {name}: privacy is on and the column has no min and max; "
        "private statistics clamp each value to a declared range"
    )
    # Private training scales by the same ranges, and refuses the same column.
    with pytest.raises(StageError) as refused:
        fitted_on_bounds(unbounded)
    assert str(refused.value) == (
        "params.yaml: train.dp_epsilon: private training scales each number by its declared "
        f"range, and {name} has no min and max in data/schema.yaml"
    )
    # Without privacy the observed range stands in.
    edges = describe(training_split, unbounded, PrivacyParams())["columns"][name]["edges"]
    values = training_split[name]
    assert (edges[0], edges[-1]) == (round(values.min(), 6), round(values.max(), 6))


def test_the_report_lists_every_feature_with_its_histogram_drawn_to_scale(
    training_split: pd.DataFrame, schema: Schema
) -> None:
    released = describe(training_split, schema, PrivacyParams())
    table = statistics_table(released)
    assert table[0].startswith("Exact: privacy is off (params.yaml: privacy.enabled). ")
    rows = {line.split(" | ")[0][2:]: line for line in table[4:]}
    assert list(rows) == [name for name in released["columns"] if name != schema.target.name]
    for name, column in schema.columns.items():
        if isinstance(column, CategoryColumn):
            continue
        counts = released["columns"][name]["counts"]
        bars = rows[name].split(" | ")[2].split(" ")[0]
        assert len(bars) == len(counts)
        assert bars[counts.index(max(counts))] == "█"  # the tallest bin is full height
        assert [bar == "▁" for bar in bars] == [count <= max(counts) / 14 for count in counts]
