"""``evaluate``: the greedy policy's episode returns over fixed seeds, and what it saw.

The observations it acted on, with its action on each, become the test data of the ONNX
parity gate (``export``) and of a baseline model (``validate``).
"""

from __future__ import annotations

import logging

import mlflow
import pandas as pd

from .. import environment
from ..config import Paths
from ..environment import TARGET, AgentParams
from ..files import atomic_path, write_json
from ..frameworks import rllib
from ..tracking import pipeline_run

log = logging.getLogger(__name__)


def run(params: AgentParams, paths: Paths) -> None:
    """Play the evaluation episodes; write the return metrics and the recorded observations."""
    env = environment.make(params.environment)
    schema = environment.schema(env, params.environment)
    module = rllib.load(paths.model)
    seeds = environment.seeds(params.seed, params.evaluate)
    returns, observations, actions = environment.episodes(env, rllib.act(module), seeds)
    scores = environment.return_metrics(returns)
    write_json(paths.metrics, scores)
    recorded = pd.DataFrame(observations, columns=schema.features).assign(**{TARGET: actions})
    with atomic_path(paths.test) as temporary:
        recorded.to_csv(temporary, index=False)
    with pipeline_run(paths):
        mlflow.log_metrics(scores)
        for episode, value in enumerate(returns):
            mlflow.log_metric("episode_return", value, step=episode)
    log.info("returns over %d episodes: %s", len(returns), scores)
