"""Statistics about the training split for the report, private when privacy is on.

Rows, class counts, and per feature a mean and a histogram (numbers, over the schema's range)
or counts per category.

Each statistic is one OpenDP transformation over one column (clamp, bin, count, sum). With
privacy on, each is released through OpenDP's Laplace mechanism at an equal share of
``privacy.statistics_epsilon``, and the epsilon spent is what OpenDP's privacy maps give for
one added or removed row, summed (basic composition). Clamping to the schema's bounds keeps
one row's influence bounded without looking at the data: a numeric column needs both bounds.
With privacy off, the same transformations release the exact values (a column without bounds
is binned over its observed range).

The noise comes from OpenDP's secure sampler and is never seeded: noise that can be
regenerated can be subtracted. Re-running the stage releases new noise and spends the budget
again, so DVC runs it only when the training split or ``params.yaml: privacy`` changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import opendp.prelude as dp
import pandas as pd

from .config import PrivacyParams, StageError
from .schema import CategoryColumn, Schema

dp.enable_features("contrib")  # OpenDP's Laplace on floats and binning are contributed code

ROWS = "rows"  # the row count's key among the released values


@dataclass(frozen=True)
class _Query:
    """One released value: an OpenDP transformation over ``column`` of the split."""

    key: str
    column: str
    transformation: Any
    post: Callable[[Any], Any]  # post-processing of the released value (costs no privacy)


def describe(frame: pd.DataFrame, schema: Schema, privacy: PrivacyParams) -> dict[str, Any]:
    """The report's statistics of ``frame`` (features and target), private when privacy is on.

    Raises:
        StageError: privacy is on and a numeric column lacks ``min`` or ``max`` in the schema.
    """
    ranges = _ranges(frame, schema, privacy.enabled)
    queries = _queries(schema, ranges, privacy.histogram_bins)
    epsilon = privacy.statistics_epsilon / len(queries) if privacy.enabled else None
    released: dict[str, Any] = {}
    spent = 0.0
    for query in queries:
        values = _column(frame[query.column], query.column, schema)
        if epsilon is None:
            released[query.key] = query.post(query.transformation(values))
            continue
        measurement = _laplace(query.transformation, epsilon)
        released[query.key] = query.post(measurement(values))
        spent += measurement.map(1)
    return {
        "private": privacy.enabled,
        "mechanism": "OpenDP's Laplace mechanism" if privacy.enabled else None,
        "epsilon": round(spent, 9) if privacy.enabled else None,
        "delta": 0.0 if privacy.enabled else None,
        "rows": released[ROWS],
        "columns": _assembled(released, schema, ranges, privacy.histogram_bins),
    }


def _ranges(frame: pd.DataFrame, schema: Schema, private: bool) -> dict[str, tuple[float, float]]:
    """Each numeric column's range: the schema's, else (privacy off only) the observed one."""
    unbounded = schema.unbounded()
    if private and unbounded:
        raise StageError(
            f"data/schema.yaml: {unbounded[0]}: privacy is on and the column has no min and max; "
            "private statistics clamp each value to a declared range"
        )
    ranges = {}
    for name, column in schema.columns.items():
        if isinstance(column, CategoryColumn):
            continue
        low = frame[name].min() if column.min is None else column.min
        high = frame[name].max() if column.max is None else column.max
        # One observed value: widen to a unit range so the bins have a width.
        ranges[name] = (float(low), float(high) if high > low else float(low) + 1.0)
    return ranges


def _edges(bounds: tuple[float, float], bins: int) -> list[float]:
    return [float(edge) for edge in np.linspace(*bounds, bins + 1)]


def _queries(schema: Schema, ranges: dict[str, tuple[float, float]], bins: int) -> list[_Query]:
    target = schema.target
    queries = [
        _Query(ROWS, target.name, _space(str) >> dp.t.then_count(), _count),
        _categories(target.name, [str(label) for label in target.classes]),
    ]
    for name, column in schema.columns.items():
        if isinstance(column, CategoryColumn):
            queries.append(_categories(name, column.categories))
            continue
        clamped = _space(float) >> dp.t.then_clamp(ranges[name])
        queries += [
            _Query(f"{name}.sum", name, clamped >> dp.t.then_sum(), float),
            _Query(
                f"{name}.histogram",
                name,
                clamped
                >> dp.t.then_find_bin(edges=_edges(ranges[name], bins)[1:-1])
                >> dp.t.then_count_by_categories(categories=list(range(bins))),
                _counts,
            ),
        ]
    return queries


def _categories(column: str, categories: list[str]) -> _Query:
    counting = _space(str) >> dp.t.then_count_by_categories(categories=categories)
    return _Query(f"{column}.counts", column, counting, _counts)


def _space(kind: type) -> tuple[Any, Any]:
    """Vectors of one column's values; neighbouring datasets differ by one row."""
    atom = dp.atom_domain(T=kind, nan=False) if kind is float else dp.atom_domain(T=kind)
    return dp.vector_domain(atom), dp.symmetric_distance()


def _laplace(transformation: Any, epsilon: float) -> Any:
    """``transformation`` with Laplace noise scaled so one row changes it by at most epsilon."""
    mechanism = dp.m.then_laplace
    scale = dp.binary_search_param(
        lambda scale: transformation >> mechanism(scale), d_in=1, d_out=epsilon
    )
    return transformation >> mechanism(scale)


def _column(values: pd.Series, name: str, schema: Schema) -> list[Any]:
    column = schema.columns.get(name)
    if column is None or isinstance(column, CategoryColumn):
        return values.astype(str).tolist()
    return values.astype(float).tolist()


def _count(released: int) -> int:
    return max(int(released), 0)


def _counts(released: list[int]) -> list[int]:
    """Noisy counts clipped at zero, without OpenDP's trailing count of unlisted values."""
    return [max(int(count), 0) for count in released[:-1]]


def _assembled(
    released: dict[str, Any], schema: Schema, ranges: dict[str, tuple[float, float]], bins: int
) -> dict[str, Any]:
    """The released values as one entry per column, in schema order, target first."""
    target = schema.target
    classes = [str(label) for label in target.classes]
    counts = dict(zip(classes, released[f"{target.name}.counts"], strict=True))
    columns: dict[str, Any] = {target.name: {"type": "target", "counts": counts}}
    rows = max(released[ROWS], 1)
    for name, column in schema.columns.items():
        if isinstance(column, CategoryColumn):
            counts = dict(zip(column.categories, released[f"{name}.counts"], strict=True))
            columns[name] = {"type": "category", "counts": counts}
        else:
            low, high = ranges[name]
            mean = min(max(released[f"{name}.sum"] / rows, low), high)
            columns[name] = {
                "type": column.type,
                "mean": round(mean, 6),
                "edges": [round(edge, 6) for edge in _edges(ranges[name], bins)],
                "counts": released[f"{name}.histogram"],
            }
    return columns
