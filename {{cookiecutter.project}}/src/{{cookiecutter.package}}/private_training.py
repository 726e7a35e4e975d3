"""Differentially private logistic regression: objective perturbation.

Chaudhuri, Monteleoni and Sarwate, "Differentially Private Empirical Risk Minimization"
(JMLR 2011), Algorithm 2: the regularized logistic loss gets a random linear term, and its
exact minimizer is epsilon-DP (one row added or removed), provided every row has norm at
most 1. That holds by construction here: numbers are scaled by the schema's public bounds
into [0, 1], categories are one-hot, a constant column carries the intercept, and the row is
divided by the square root of the feature count plus one. Nothing about the data shapes the scaling.

Why not a library: diffprivlib (IBM; this mechanism is its LogisticRegression) and its fork
diffprivlib-fix import scikit-learn internals removed after 1.7, and this project trains with
a current scikit-learn. The mechanism is forty lines of NumPy and SciPy, tested against its
sensitivity bound in tests/test_private_training.py, and the result is an ordinary
``LogisticRegression`` that skl2onnx exports like any other.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression

SMOOTHNESS = 0.25  # c: the logistic loss's second derivative is at most 1/4


def fit(
    matrix: np.ndarray,
    target: np.ndarray,
    classes: list[int],
    features: int,
    inverse_regularization: float,
    epsilon: float,
) -> LogisticRegression:
    """An epsilon-DP logistic regression on ``matrix``.

    The entries of ``matrix`` lie in [0, 1], with at most one 1 per one-hot group: a column
    or a group per each of ``features`` (:func:`..tabular.fitted_on_bounds`).
    ``inverse_regularization`` is scikit-learn's ``C``: the objective is the mean logistic
    loss plus ``1 / (2 n C)`` times the squared norm of the weights. The noise is drawn from
    the operating system's entropy, never from a seed.
    """
    rows, width = matrix.shape
    design, norm = unit_rows(matrix, features)
    labels = np.where(target == classes[1], 1.0, -1.0)
    regularization = 1 / (rows * inverse_regularization)
    spend, extra = split(epsilon, rows, regularization)
    noise = perturbation(width + 1, spend, np.random.default_rng())
    weights = minimize_perturbed(design, labels, regularization + extra, noise)
    model = LogisticRegression(C=inverse_regularization)
    model.classes_ = np.asarray(classes)
    model.coef_ = (weights[:-1] / norm).reshape(1, -1)
    model.intercept_ = np.array([weights[-1] / norm])
    model.n_features_in_ = width
    model.n_iter_ = np.array([0])
    return model


def unit_rows(matrix: np.ndarray, features: int) -> tuple[np.ndarray, float]:
    """The rows with a constant column for the intercept, divided by their norm's bound.

    Each feature adds at most 1 to a row's squared norm (a number in [0, 1], or a one-hot
    group), and so does the constant.
    """
    norm = math.sqrt(features + 1)
    return np.hstack([matrix, np.ones((len(matrix), 1))]) / norm, norm


def split(epsilon: float, rows: int, regularization: float) -> tuple[float, float]:
    """Algorithm 2's epsilon for the noise, and the regularization it adds.

    Part of epsilon pays for the loss's curvature; with too little regularization for that,
    the algorithm adds some and gives the noise half of epsilon.
    """
    ratio = SMOOTHNESS / (rows * regularization)
    spend = epsilon - math.log(1 + 2 * ratio + ratio**2)
    if spend > 0:
        return spend, 0.0
    return epsilon / 2, SMOOTHNESS / (rows * math.expm1(epsilon / 4)) - regularization


def perturbation(width: int, spend: float, random: np.random.Generator) -> np.ndarray:
    """A vector with density proportional to exp(-spend |b| / 2).

    That is a uniform direction and a Gamma(width, 2 / spend) norm.
    """
    direction = random.standard_normal(width)
    return random.gamma(width, 2 / spend) * direction / np.linalg.norm(direction)


def minimize_perturbed(
    design: np.ndarray, labels: np.ndarray, strength: float, noise: np.ndarray
) -> np.ndarray:
    """The minimizer of mean logistic loss + strength / 2 |w|^2 + noise . w / n (labels +-1)."""
    rows, width = design.shape

    def objective(weights: np.ndarray) -> tuple[float, np.ndarray]:
        margins = labels * (design @ weights)
        loss = np.logaddexp(0, -margins).mean() + strength / 2 * weights @ weights
        gradient = -(design * (labels * _sigmoid(-margins))[:, None]).mean(axis=0)
        gradient += strength * weights + noise / rows
        return loss + noise @ weights / rows, gradient

    solved = minimize(
        objective,
        np.zeros(width),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-10, "ftol": 1e-16, "maxiter": 10_000},
    )
    return np.asarray(solved.x)


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -values))
