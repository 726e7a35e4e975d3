"""The reinforcement-learning task: the environment the agent acts in, and what a request is.

The agent observes a flat vector and picks one of a few discrete actions, so the served
policy speaks the same contract as a classifier: one input per observation component
(``obs_0``, ``obs_1``, ...) and the chosen action as the label, with each action's
probability. The request schema comes from the environment's observation space, so the
serving app, its validation and the ONNX parity gate work unchanged.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field, PositiveInt

from .config import Bound, ParamsFile, ParityBound, StageError, ValidateParams, _Strict
from .schema import NumericColumn, Schema, Target

if TYPE_CHECKING:
    import gymnasium

# Observations in, actions out: ``act`` maps a batch of observations to one action each.
Act = Callable[[np.ndarray], np.ndarray]
TARGET = "action"


class EnvironmentParams(_Strict):
    """``params.yaml: environment``: which gymnasium environment, made how."""

    id: str = "CartPole-v1"
    config: dict[str, Any] = Field(default_factory=dict)  # keyword arguments of gymnasium.make
    # Imported before the environment is made: where a custom environment registers itself.
    module: str | None = None


class EvaluateParams(_Strict):
    """``params.yaml: evaluate``: the episodes the policy is judged on."""

    episodes: PositiveInt = 10  # with seeds seed, seed + 1, ...; the greedy action each step


class AgentValidateParams(_Strict):
    """``params.yaml: validate``: the gates that apply to an agent."""

    # On metrics/metrics.json: mean_return, std_return, min_return.
    thresholds: dict[str, Bound] = Field(default_factory=dict)
    max_regression: float = Field(ge=0)  # in units of return
    parity: ParityBound

    def gates(self) -> ValidateParams:
        """As the gates take them; the fairness gate does not apply."""
        return ValidateParams(fairness=None, **self.model_dump())


class AgentParams(ParamsFile):
    """All of a reinforcement-learning project's ``params.yaml``."""

    seed: int
    environment: EnvironmentParams = EnvironmentParams()
    train: dict[str, Any]  # validated by the framework's Params when train runs
    evaluate: EvaluateParams = EvaluateParams()
    validate_: AgentValidateParams = Field(alias="validate")


def make(params: EnvironmentParams) -> gymnasium.Env:
    """The environment, or a one-line error naming the param that cannot make it.

    Raises:
        StageError: for a module that does not import, an unknown id or a bad config.
    """
    import gymnasium

    if params.module is not None:
        try:
            importlib.import_module(params.module)
        except ImportError as error:
            raise StageError(f"params.yaml: environment.module: {error}") from None
    try:
        return gymnasium.make(params.id, **params.config)
    except gymnasium.error.Error as error:
        raise StageError(f"params.yaml: environment.id: {params.id!r}: {error}") from None
    except TypeError as error:
        raise StageError(f"params.yaml: environment.config: {error}") from None


def schema(env: gymnasium.Env, params: EnvironmentParams) -> Schema:
    """The request schema: one number per observation component, an action per class.

    Raises:
        StageError: for an environment this task cannot serve.
    """
    from gymnasium import spaces

    observation, action = env.observation_space, env.action_space
    if not isinstance(observation, spaces.Box) or len(observation.shape) != 1:
        raise StageError(
            f"params.yaml: environment.id: {params.id!r} observes {observation}; "
            "this project serves flat Box observations"
        )
    if not isinstance(action, spaces.Discrete) or action.start != 0:
        raise StageError(
            f"params.yaml: environment.id: {params.id!r} acts in {action}; "
            "this project serves Discrete actions numbered from 0"
        )
    columns = {
        f"obs_{index}": NumericColumn(
            type="number",
            min=float(low) if np.isfinite(low) else None,
            max=float(high) if np.isfinite(high) else None,
        )
        for index, (low, high) in enumerate(zip(observation.low, observation.high, strict=True))
    }
    classes = list(range(int(action.n)))
    return Schema(target=Target(name=TARGET, classes=classes), columns=columns)


def episodes(
    env: gymnasium.Env, act: Act, seeds: list[int]
) -> tuple[list[float], np.ndarray, np.ndarray]:
    """Play one episode per seed with ``act``.

    Returns each episode's return, every observation seen and the action taken on it (the
    parity gate's recorded observations).
    """
    returns, observations, actions = [], [], []
    for seed in seeds:
        observation, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            action = int(act(np.asarray(observation, dtype=np.float32)[None, :])[0])
            observations.append(observation)
            actions.append(action)
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns, np.asarray(observations, dtype=np.float32), np.asarray(actions)


def seeds(seed: int, params: EvaluateParams) -> list[int]:
    """The evaluation episodes' seeds: fixed by the project's seed."""
    return list(range(seed, seed + params.episodes))


def return_metrics(returns: list[float]) -> dict[str, float]:
    """Mean, spread and worst of the episode returns (what the gates judge)."""
    values = np.asarray(returns)
    return {
        "mean_return": round(float(values.mean()), 6),
        "std_return": round(float(values.std()), 6),
        "min_return": float(values.min()),
        "episodes": float(len(values)),
    }
