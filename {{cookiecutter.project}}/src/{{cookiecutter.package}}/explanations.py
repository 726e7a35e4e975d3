"""Global explanations of the served model by InterpretML's black-box explainers.

The explainers call the model through a predict function, here the ONNX model on the serving
code path, so they explain exactly what ships, whatever framework trained it:

- importance: Morris sensitivity (``mu*``, SALib under interpret): the mean absolute change
  in a class's probability when one feature moves a step across its observed range, with
  the bootstrap half-width of a 95% confidence interval;
- shape: partial dependence: the mean probability over the rows while one feature alone is
  set to each of its grid values (every category, percentiles of a number).

interpret's explainers take numbers only: a category enters as its index in the schema and
is decoded (rounded to the nearest index) before the model sees it. A binary model is
explained for its positive class, a multiclass one for each class.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from interpret.blackbox import MorrisSensitivity, PartialDependence
from SALib.sample import morris

from .config import ExplainParams
from .schema import CategoryColumn, Schema

# One sequence of raw values per feature -> probabilities, one column per class.
Predict = Callable[[Mapping[str, Sequence[Any]]], np.ndarray]
DIGITS = 6  # rounding of the written numbers: readable diffs, same bytes on every run
logging.getLogger("interpret").setLevel(logging.WARNING)  # it logs every call at INFO


def explain(
    predict: Predict, schema: Schema, features: pd.DataFrame, params: ExplainParams, seed: int
) -> dict[str, Any]:
    """Importances and shape functions for each explained class (see the module docstring)."""
    rows = features[schema.features].sample(n=min(params.rows, len(features)), random_state=seed)
    encoded = _encode(rows, schema)
    names, types = schema.features, [_type(schema, name) for name in schema.features]
    classes = schema.target.classes
    explained = classes[1:] if len(classes) == 2 else classes
    result: dict[str, Any] = {"rows": len(rows), "classes": {}}
    for label in explained:
        probability = _probability_of(classes.index(label), predict, schema)
        trajectories = _Trajectories(params.trajectories, params.levels, seed)
        mu_star, confidence = _morris(probability, encoded, names, types, trajectories, params)
        dependence = PartialDependence(
            probability,
            encoded,
            feature_names=names,
            feature_types=types,
            num_points=params.grid_points,
        ).explain_global()
        importance = [
            {"feature": name, "importance": _round(mu), "confidence": _round(conf)}
            for name, mu, conf in zip(names, mu_star, confidence, strict=True)
        ]
        importance.sort(key=lambda item: (-item["importance"], item["feature"]))
        result["classes"][str(label)] = {
            "importance": importance,
            "shape": {
                name: {
                    "values": _grid(schema, name, dependence.data(index)["names"]),
                    "probability": [_round(p) for p in dependence.data(index)["scores"]],
                }
                for index, name in enumerate(names)
            },
        }
    return result


def _morris(
    probability: Callable[[Any], np.ndarray],
    encoded: np.ndarray,
    names: list[str],
    types: list[str],
    trajectories: _Trajectories,
    params: ExplainParams,
) -> tuple[np.ndarray, np.ndarray]:
    """Morris ``mu*`` and its confidence half-width per feature.

    A probability that no feature moves has no effects to rank, and interpret's explainer
    fails on it (its convergence index is a maximum over the features with an effect): every
    importance is then exactly 0.
    """
    samples = trajectories.sample(encoded, names, types)
    if np.ptp(probability(samples)) == 0:
        return np.zeros(len(names)), np.zeros(len(names))
    morris = MorrisSensitivity(
        probability,
        encoded,
        feature_names=names,
        feature_types=types,
        sampler=trajectories,
        num_levels=params.levels,
        seed=trajectories.seed,
    )
    return morris.mu_star_, morris.mu_star_conf_


class _Trajectories:
    """Seeded Morris trajectories over each feature's observed range.

    interpret's own sampler widens a range narrower than 1 by 1 (a ratio in [0, 1] would be
    probed up to 2), so the trajectories come from SALib directly.
    """

    def __init__(self, trajectories: int, levels: int, seed: int) -> None:
        self.trajectories, self.levels, self.seed = trajectories, levels, seed

    def sample(self, data: np.ndarray, names: list[str], _types: list[str]) -> np.ndarray:
        bounds = [[float(data[:, i].min()), float(data[:, i].max())] for i in range(len(names))]
        problem = {"num_vars": len(names), "names": names, "bounds": bounds}
        return morris.sample(problem, self.trajectories, num_levels=self.levels, seed=self.seed)


def _type(schema: Schema, name: str) -> str:
    return "nominal" if isinstance(schema.columns[name], CategoryColumn) else "continuous"


def _encode(rows: pd.DataFrame, schema: Schema) -> np.ndarray:
    encoded = rows.copy()
    for name in schema.features:
        column = schema.columns[name]
        if isinstance(column, CategoryColumn):
            encoded[name] = encoded[name].map(column.categories.index)
    return encoded.to_numpy(dtype=np.float64)


def _decode(schema: Schema, name: str, values: np.ndarray) -> list[Any]:
    column = schema.columns[name]
    if isinstance(column, CategoryColumn):
        return [column.categories[int(index)] for index in np.rint(values)]
    return values.tolist()


def _grid(schema: Schema, name: str, values: np.ndarray) -> list[Any]:
    """Partial dependence's grid as the feature's values: categories, or rounded numbers."""
    if isinstance(schema.columns[name], CategoryColumn):
        return _decode(schema, name, np.asarray(values, dtype=np.float64))
    return [_round(value) for value in values]


def _probability_of(column: int, predict: Predict, schema: Schema) -> Callable[[Any], np.ndarray]:
    """The probability of one class as a function of the encoded matrix."""

    def probability(encoded: Any) -> np.ndarray:
        matrix = np.asarray(encoded, dtype=np.float64)
        columns = {
            name: _decode(schema, name, matrix[:, index])
            for index, name in enumerate(schema.features)
        }
        return np.asarray(predict(columns))[:, column]

    return probability


def _round(value: float) -> float:
    return round(float(value), DIGITS)
