"""Data validation names the column and the problem; invalid data leaves no outputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package }}.data import (
    DataValidationError,
    prepare,
    read_raw,
    validate_frame,
)
from {{ cookiecutter.package }}.schema import Schema

from .conftest import PROJECT

DEMO = PROJECT / "data" / "demo" / "loans.csv"


def demo_text() -> pd.DataFrame:
    return pd.read_csv(DEMO, dtype=str, keep_default_na=False, na_values=[""]).head(50)


def set_cell(column: str, value: object, row: int = 3) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row, column] = value
        return frame

    return mutate


BROKEN = {
    "missing column": (lambda f: f.drop(columns="income"), ["'income'", "missing from the data"]),
    "undeclared column": (lambda f: f.assign(zip_code="12345"), ["'zip_code'", "not declared"]),
    "wrong type": (
        set_cell("age", "forty"),
        ["'age'", "expected integer", "'forty'", "CSV lines 5"],
    ),
    "fraction in integer": (set_cell("age", "40.5"), ["'age'", "fractions"]),
    "missing value": (
        set_cell("debt_ratio", None),
        ["'debt_ratio'", "1 missing values", "CSV lines 5"],
    ),
    "above maximum": (set_cell("debt_ratio", "1.7"), ["'debt_ratio'", "above maximum 1.0"]),
    "below minimum": (set_cell("income", "-3"), ["'income'", "below minimum 0.0"]),
    "unseen category": (
        set_cell("employment", "student"),
        ["'employment'", "unknown category 'student'"],
    ),
    "unknown class": (set_cell("approved", "2"), ["'approved'", "unknown class"]),
}


def test_demo_data_is_valid_and_typed(schema: Schema) -> None:
    frame = read_raw(DEMO, schema)
    assert len(frame) == 3000
    assert str(frame["age"].dtype) == "int64"
    assert str(frame["income"].dtype) == "float64"
    assert set(frame["gender"]) == {"female", "male"}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_broken_data_names_column_and_problem(schema: Schema, case: str) -> None:
    mutate, expected = BROKEN[case]
    with pytest.raises(DataValidationError) as error:
        validate_frame(mutate(demo_text()), schema)
    message = str(error.value)
    for fragment in expected:
        assert fragment in message


def test_every_problem_is_reported_at_once(schema: Schema) -> None:
    frame = set_cell("age", "200")(set_cell("gender", "other")(demo_text()))
    with pytest.raises(DataValidationError) as error:
        validate_frame(frame, schema)
    assert len(error.value.problems) == 2


def test_prepare_writes_nothing_for_invalid_data(schema: Schema, tmp_path: Path) -> None:
    raw = tmp_path / "raw.csv"
    set_cell("employment", "student")(demo_text()).to_csv(raw, index=False)
    train, test = tmp_path / "out" / "train.csv", tmp_path / "out" / "test.csv"
    with pytest.raises(DataValidationError):
        prepare(raw, schema, 0.25, 42, train, test)
    assert not train.exists()
    assert not test.exists()
    assert not list(tmp_path.glob("out/*"))


def test_split_is_reproducible_and_stratified(schema: Schema, tmp_path: Path) -> None:
    outputs = []
    for attempt in ("a", "b"):
        train, test = tmp_path / attempt / "train.csv", tmp_path / attempt / "test.csv"
        prepare(DEMO, schema, 0.25, 7, train, test)
        outputs.append((train.read_bytes(), test.read_bytes()))
    assert outputs[0] == outputs[1]
    train_frame = pd.read_csv(tmp_path / "a" / "train.csv")
    test_frame = pd.read_csv(tmp_path / "a" / "test.csv")
    assert len(test_frame) == 750
    assert abs(train_frame["approved"].mean() - test_frame["approved"].mean()) < 0.01
