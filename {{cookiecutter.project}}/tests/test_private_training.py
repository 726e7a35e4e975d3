"""Differentially private logistic regression (objective perturbation) holds to its algorithm:
rows of norm at most 1, noise of the specified density, the exact minimizer, and a model that
predicts what its weights say. Seeded generators make these tests repeatable; training draws
its noise from the operating system."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from {{ cookiecutter.package }}.private_training import (
    SMOOTHNESS,
    fit,
    minimize_perturbed,
    perturbation,
    split,
    unit_rows,
)
from {{ cookiecutter.package }}.schema import CategoryColumn, Schema
from {{ cookiecutter.package }}.tabular import fitted_on_bounds


@pytest.fixture(scope="module")
def problem(
    training_split: pd.DataFrame, bounded: Schema
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training split as the mechanism sees it: matrix, unit rows, labels in {-1, 1}."""
    matrix = fitted_on_bounds(bounded).transform(training_split[bounded.features])
    design, _ = unit_rows(matrix, len(bounded.features))
    target = training_split[bounded.target.name].to_numpy()
    return matrix, design, np.where(target == bounded.target.classes[1], 1.0, -1.0)


def test_every_row_has_norm_at_most_one_even_at_the_bounds(
    problem: tuple[np.ndarray, np.ndarray, np.ndarray], bounded: Schema
) -> None:
    _, design, _ = problem
    assert np.linalg.norm(design, axis=1).max() <= 1 + 1e-12
    # The worst row: every number at its maximum, one category each.
    corner = pd.DataFrame(
        [
            {
                name: column.categories[-1] if isinstance(column, CategoryColumn) else column.max
                for name, column in bounded.columns.items()
            }
        ]
    )
    worst, _ = unit_rows(fitted_on_bounds(bounded).transform(corner), len(bounded.features))
    assert np.linalg.norm(worst) == pytest.approx(1.0, abs=1e-12)


def test_without_noise_the_objective_is_scikit_learns(
    problem: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    _, design, labels = problem
    rows, width = design.shape
    reference = LogisticRegression(C=1.0, fit_intercept=False, tol=1e-12, max_iter=10_000)
    reference.fit(design, labels)
    ours = minimize_perturbed(design, labels, 1 / rows, np.zeros(width))
    assert np.abs(ours - reference.coef_[0]).max() < 1e-5


def test_the_weights_are_the_exact_minimizer_of_the_perturbed_objective(
    problem: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """The privacy proof holds for the exact minimizer: the gradient vanishes there."""
    _, design, labels = problem
    rows, width = design.shape
    noise = perturbation(width, 0.5, np.random.default_rng(7))
    weights = minimize_perturbed(design, labels, 1e-3, noise)
    margins = labels * (design @ weights)
    gradient = -(design * (labels / (1 + np.exp(margins)))[:, None]).mean(axis=0)
    gradient += 1e-3 * weights + noise / rows
    assert np.linalg.norm(gradient) < 1e-7
    assert np.linalg.norm(weights - minimize_perturbed(design, labels, 1e-3, 0 * noise)) > 0.1


def test_the_noise_has_the_specified_density() -> None:
    """Norm Gamma(width, 2 / spend), direction uniform: checked on 20,000 draws."""
    width, spend = 11, 0.8
    random = np.random.default_rng(3)
    draws = np.array([perturbation(width, spend, random) for _ in range(20_000)])
    norms = np.linalg.norm(draws, axis=1)
    assert norms.mean() == pytest.approx(width * 2 / spend, rel=0.02)  # Gamma mean
    assert norms.var() == pytest.approx(width * (2 / spend) ** 2, rel=0.06)  # Gamma variance
    directions = draws / norms[:, None]
    assert np.abs(directions.mean(axis=0)).max() < 0.03  # no preferred direction


@pytest.mark.parametrize(
    ("regularization", "adds"),
    [(1e-2, False), (1e-6, True)],  # enough regularization for epsilon 1, and too little
)
def test_epsilon_pays_for_the_curvature_and_the_noise(regularization: float, adds: bool) -> None:
    rows, epsilon = 2000, 1.0
    spend, extra = split(epsilon, rows, regularization)
    ratio = SMOOTHNESS / (rows * regularization)
    if not adds:
        assert (spend, extra) == (epsilon - math.log((1 + ratio) ** 2), 0.0)
        return
    assert spend == epsilon / 2
    # The added regularization brings the curvature's share down to epsilon / 2 exactly.
    total = regularization + extra
    assert math.log((1 + SMOOTHNESS / (rows * total)) ** 2) == pytest.approx(epsilon / 2)


def test_a_private_model_predicts_what_its_weights_say_and_differs_each_time(
    problem: tuple[np.ndarray, np.ndarray, np.ndarray], bounded: Schema
) -> None:
    matrix, design, labels = problem
    target = np.where(labels > 0, bounded.target.classes[1], bounded.target.classes[0])
    features = len(bounded.features)
    first, second = (fit(matrix, target, bounded.target.classes, features, 1, 1) for _ in "ab")
    assert not np.allclose(first.coef_, second.coef_)  # fresh noise: never seeded
    weights = np.append(first.coef_[0], first.intercept_[0]) * unit_rows(matrix, features)[1]
    expected = 1 / (1 + np.exp(-(design @ weights)))
    assert np.abs(first.predict_proba(matrix)[:, 1] - expected).max() < 1e-12
