"""Read data and check it against the data contract (``data/schema.yaml``).

Validation reads every column as text first so that it can say exactly what is wrong and
where: each problem names the column, the rule it breaks and the first offending CSV lines.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from .config import StageError
from .schema import CategoryColumn, NumericColumn, Schema

SHOWN_LINES = 5
# pandas' index 0 is the row after the header, i.e. line 2 of the CSV file.
FIRST_DATA_LINE = 2


class DataValidationError(StageError):
    """The data breaks the schema; the message lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        """Keep the individual problems for callers and tests."""
        self.problems = problems
        super().__init__("data does not match the schema:\n  - " + "\n  - ".join(problems))


def _lines(mask: pd.Series) -> str:
    lines = (mask[mask].index[:SHOWN_LINES] + FIRST_DATA_LINE).tolist()
    more = " ..." if mask.sum() > SHOWN_LINES else ""
    return f"CSV lines {', '.join(map(str, lines))}{more}"


def _check_numeric(
    name: str, text: pd.Series, column: NumericColumn
) -> tuple[pd.Series, list[str]]:
    problems = []
    values = pd.to_numeric(text, errors="coerce")
    invalid = values.isna() & text.notna()
    if invalid.any():
        examples = ", ".join(repr(v) for v in text[invalid].unique()[:3])
        problems.append(
            f"column {name!r}: expected {column.type}, found {examples} at {_lines(invalid)}"
        )
    if column.type == "integer":
        fractional = values.notna() & (values % 1 != 0)
        if fractional.any():
            problems.append(
                f"column {name!r}: expected integer, found fractions at {_lines(fractional)}"
            )
    bounds = (("below minimum", column.min, values.lt), ("above maximum", column.max, values.gt))
    for label, bound, beyond in bounds:
        if bound is not None and (outside := beyond(bound)).any():
            count = int(outside.sum())
            problems.append(f"column {name!r}: {count} values {label} {bound} at {_lines(outside)}")
    return values, problems


def _check_category(name: str, text: pd.Series, column: CategoryColumn) -> list[str]:
    unseen = text.notna() & ~text.isin(column.categories)
    if not unseen.any():
        return []
    found = ", ".join(repr(v) for v in text[unseen].unique()[:3])
    return [
        f"column {name!r}: unknown category {found} at {_lines(unseen)}; "
        f"expected one of {', '.join(column.categories)}"
    ]


def validate_frame(text: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Check ``text`` (all columns as strings) against ``schema`` and return typed data.

    Raises:
        DataValidationError: listing every problem, each naming its column.
    """
    expected = [*schema.features, schema.target.name]
    problems = [f"column {name!r}: missing from the data" for name in expected if name not in text]
    problems += [
        f"column {name!r}: not declared in data/schema.yaml"
        for name in text
        if name not in expected
    ]
    typed: dict[str, pd.Series] = {}
    for name in (name for name in expected if name in text):
        column_text = text[name]
        if (missing := column_text.isna()).any():
            problems.append(
                f"column {name!r}: {int(missing.sum())} missing values at {_lines(missing)}"
            )
        column = schema.columns.get(name)
        if isinstance(column, CategoryColumn):
            problems += _check_category(name, column_text, column)
            typed[name] = column_text
            continue
        numeric = column or NumericColumn(type="integer")  # the target holds integer classes
        typed[name], found = _check_numeric(name, column_text, numeric)
        problems += found
    target = typed.get(schema.target.name)
    if (
        target is not None
        and (unknown := target.notna() & ~target.isin(schema.target.classes)).any()
    ):
        problems.append(
            f"column {schema.target.name!r}: unknown class at {_lines(unknown)}; "
            f"expected one of {schema.target.classes}"
        )
    if problems:
        raise DataValidationError(problems)
    return _typed(pd.DataFrame(typed)[expected], schema)


def _typed(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    dtypes = {
        name: "string"
        if isinstance(column, CategoryColumn)
        else ("int64" if column.type == "integer" else "float64")
        for name, column in schema.columns.items()
    }
    return frame.astype({**dtypes, schema.target.name: "int64"})


def read_raw(path: Path, schema: Schema) -> pd.DataFrame:
    """Read a CSV as text and validate it against ``schema``.

    Raises:
        DataValidationError: for a file that is not a CSV table (empty, binary, not UTF-8,
            ragged, duplicated header) as well as for data that breaks the schema.
    """
    head = path.read_bytes()[:65536]
    if not head.strip():
        raise DataValidationError(["the file is empty; expected a CSV header and rows"])
    if b"\x00" in head:
        raise DataValidationError(["the file is binary (NUL bytes), not a CSV text file"])
    try:
        text = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataValidationError(
            [f"not UTF-8 text: byte {error.object[error.start]:#x} at offset {error.start}"]
        ) from None
    except pd.errors.ParserError as error:
        raise DataValidationError([f"not a well-formed CSV table: {error}".strip()]) from None
    header = next(csv.reader(io.StringIO(head.decode("utf-8", errors="replace"))))
    if duplicated := sorted({name for name in header if header.count(name) > 1}):
        raise DataValidationError(
            [f"column {name!r}: appears twice in the header" for name in duplicated]
        )
    if text.empty:
        raise DataValidationError(["the file has a header but no data rows"])
    return validate_frame(text, schema)


def read_prepared(path: Path, schema: Schema) -> tuple[pd.DataFrame, pd.Series]:
    """Read a split written by :func:`prepare` as features and target."""
    frame = _typed(pd.read_csv(path, keep_default_na=False), schema)
    return frame[schema.features], frame[schema.target.name]
