"""Data validation names the column and the problem; invalid data leaves no outputs.

The broken cases are derived from ``data/schema.yaml``: each applies to the first column of
the kind it needs, and cases the schema offers no column for are not generated.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package }}.config import Params, Paths, StageError
from {{ cookiecutter.package }}.data import (
    DataValidationError,
    read_raw,
    validate_frame,
)
from {{ cookiecutter.package }}.schema import CategoryColumn, NumericColumn, Schema
from {{ cookiecutter.package }}.stages import prepare

from .conftest import PROJECT, SCHEMA

Mutation = Callable[[pd.DataFrame], pd.DataFrame]
ROW = 3  # the row the cell mutations change: CSV line 5 (header is line 1, pandas counts from 0)


def raw_source() -> Path:
    return PROJECT / Params.load(PROJECT / Paths.params).ingest.source


def raw_text(rows: int = 50) -> pd.DataFrame:
    return pd.read_csv(raw_source(), dtype=str, keep_default_na=False, na_values=[""]).head(rows)


def set_cell(column: str, value: object) -> Mutation:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[ROW, column] = value
        return frame

    return mutate


def first(kind: type, **wanted: object) -> str | None:
    """The first feature column of ``kind`` whose attributes have the ``wanted`` values."""
    for name, column in SCHEMA.columns.items():
        if isinstance(column, kind) and all(
            (getattr(column, key) is not None) if value is ... else getattr(column, key) == value
            for key, value in wanted.items()
        ):
            return name
    return None


def beyond(name: str, bound: str) -> int | float:
    """A value one past ``name``'s ``min`` or ``max``, typed like the column."""
    column = SCHEMA.columns[name]
    value = getattr(column, bound) + (1 if bound == "max" else -1)
    return int(value) if column.type == "integer" else value


def broken_cases(schema: Schema) -> dict[str, tuple[Mutation, list[str]]]:
    """Case id -> (how to break the data, fragments the error must contain)."""
    feature, target = schema.features[0], schema.target.name
    cases: dict[str, tuple[Mutation, list[str]]] = {
        "missing column": (lambda f: f.drop(columns=feature), [repr(feature), "missing"]),
        "undeclared column": (
            lambda f: f.assign(undeclared_zz="1"),
            ["'undeclared_zz'", "not declared"],
        ),
        "missing value": (set_cell(feature, None), [repr(feature), "1 missing values", "5"]),
        "unknown class": (set_cell(target, "-7"), [repr(target), "unknown class"]),
    }
    if numeric := first(NumericColumn):
        cases["wrong type"] = (
            set_cell(numeric, "not-a-number"),
            [repr(numeric), "expected", "'not-a-number'", "CSV lines 5"],
        )
    if integer := first(NumericColumn, type="integer"):
        cases["fraction in integer"] = (set_cell(integer, "1.5"), [repr(integer), "fractions"])
    if bounded := first(NumericColumn, max=...):
        cases["above maximum"] = (
            set_cell(bounded, str(beyond(bounded, "max"))),
            [repr(bounded), "above maximum"],
        )
    if bounded := first(NumericColumn, min=...):
        cases["below minimum"] = (
            set_cell(bounded, str(beyond(bounded, "min"))),
            [repr(bounded), "below minimum"],
        )
    if category := first(CategoryColumn):
        cases["unseen category"] = (
            set_cell(category, "zz-unseen"),
            [repr(category), "unknown category 'zz-unseen'"],
        )
    return cases


BROKEN = broken_cases(SCHEMA)


def test_the_project_data_is_valid_and_typed(schema: Schema) -> None:
    frame = read_raw(raw_source(), schema)
    assert len(frame) == sum(1 for _ in raw_source().open(encoding="utf-8")) - 1
    for name, column in schema.columns.items():
        expected = {"integer": "int64", "number": "float64", "category": "string"}[column.type]
        assert str(frame[name].dtype) == expected, name
    assert set(frame[schema.target.name]) <= set(schema.target.classes)


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_broken_data_names_column_and_problem(schema: Schema, case: str) -> None:
    mutate, expected = BROKEN[case]
    with pytest.raises(DataValidationError) as error:
        validate_frame(mutate(raw_text()), schema)
    message = str(error.value)
    for fragment in expected:
        assert fragment in message


def test_every_problem_is_reported_at_once(schema: Schema) -> None:
    feature, target = schema.features[0], schema.target.name
    frame = set_cell(feature, None)(set_cell(target, "-7")(raw_text()))
    with pytest.raises(DataValidationError) as error:
        validate_frame(frame, schema)
    assert len(error.value.problems) == 2


UNREADABLE = {
    "empty": (b"", "empty"),
    "header only": (None, "no data rows"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    "not utf-8": ("latin", "not UTF-8"),
    "ragged": ("ragged", "not a well-formed CSV"),
    "duplicated column": ("duplicate", "appears twice"),
}


def unreadable_bytes(kind: bytes | str | None) -> bytes:
    text = raw_source().read_text(encoding="utf-8").splitlines()
    header = text[0]
    if kind is None:
        return (header + "\n").encode()
    if kind == "latin":
        return (header + "\n" + text[1] + "\n").encode() + "café\n".encode("latin-1")
    if kind == "ragged":
        return ("\n".join([header, text[1], text[2] + ",1,2,3"]) + "\n").encode()
    if kind == "duplicate":
        first_column = header.split(",")[0]
        return ("\n".join([f"{header},{first_column}", *text[1:4]]) + "\n").encode()
    return kind


@pytest.mark.parametrize("case", UNREADABLE, ids=list(UNREADABLE))
def test_unreadable_files_get_one_line_errors(schema: Schema, case: str, tmp_path: Path) -> None:
    kind, fragment = UNREADABLE[case]
    path = tmp_path / "raw.csv"
    path.write_bytes(unreadable_bytes(kind))
    with pytest.raises(DataValidationError) as error:
        read_raw(path, schema)
    assert fragment in str(error.value)


def run_prepare(params: Params, paths: Paths, frame: pd.DataFrame) -> None:
    paths.raw.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(paths.raw, index=False)
    prepare.run(params, paths)


def test_prepare_writes_nothing_for_invalid_data(params: Params, tmp_path: Path) -> None:
    paths = Paths().at(tmp_path)
    with_schema(paths)
    feature = SCHEMA.features[0]
    with pytest.raises(StageError, match=repr(feature)):
        run_prepare(params, paths, set_cell(feature, None)(raw_text()))
    assert not paths.train.exists()
    assert not paths.test.exists()


def test_a_class_with_too_few_rows_is_refused(params: Params, tmp_path: Path) -> None:
    paths = Paths().at(tmp_path)
    with_schema(paths)
    target, rare = SCHEMA.target.name, str(SCHEMA.target.classes[0])
    frame = raw_text(200)
    keep = frame[target] != rare
    frame = pd.concat([frame[keep], frame[~keep].head(1)])
    with pytest.raises(StageError, match=f"class {rare}: 1 rows"):
        run_prepare(params, paths, frame)
    assert not paths.train.exists()


def with_schema(paths: Paths) -> None:
    paths.schema.parent.mkdir(parents=True, exist_ok=True)
    paths.schema.write_bytes((PROJECT / Paths.schema).read_bytes())


def test_split_is_reproducible_and_stratified(params: Params, tmp_path: Path) -> None:
    outputs = []
    for attempt in ("a", "b"):
        paths = Paths().at(tmp_path / attempt)
        with_schema(paths)
        run_prepare(params, paths, raw_text(10_000_000))
        outputs.append((paths.train.read_bytes(), paths.test.read_bytes()))
    assert outputs[0] == outputs[1]
    total = len(raw_text(10_000_000))
    test_frame = pd.read_csv(tmp_path / "a" / Paths.test)
    train_frame = pd.read_csv(tmp_path / "a" / Paths.train)
    assert len(test_frame) == math.ceil(params.prepare.test_size * total)
    assert len(train_frame) + len(test_frame) == total
    target = SCHEMA.target.name
    for cls in SCHEMA.target.classes:
        shares = [(part[target] == cls).mean() for part in (train_frame, test_frame)]
        assert abs(shares[0] - shares[1]) < 0.02, cls


def test_paths_move_together() -> None:
    moved = Paths().at(Path("/elsewhere"))
    assert all(
        getattr(moved, field.name) == Path("/elsewhere") / getattr(Paths(), field.name)
        for field in dataclasses.fields(Paths)
    )
