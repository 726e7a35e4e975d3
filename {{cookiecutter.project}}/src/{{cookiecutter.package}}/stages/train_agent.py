"""``train``: train the agent with RLlib's PPO and start the pipeline's MLflow run.

Each iteration's curves (mean episode return and length, policy loss, entropy) go to MLflow
and to ``logs/`` (``make tensorboard`` shows them).
"""

from __future__ import annotations

import logging

import mlflow

from .. import curves, environment
from ..config import Paths, validated
from ..environment import AgentParams
from ..files import atomic_dir
from ..frameworks import rllib
from ..tracking import pipeline_run

log = logging.getLogger(__name__)


def run(params: AgentParams, paths: Paths) -> None:
    """Train, save the policy module, log params and curves."""
    # Refuse an environment the policy could not be served for before training on it.
    environment.schema(environment.make(params.environment), params.environment)
    train_params = validated(rllib.Params, params.train, "params.yaml: train")
    module, iterations = rllib.fit(params.environment, train_params, params.seed)
    with atomic_dir(paths.model) as folder:
        rllib.save(module, folder)
    with pipeline_run(paths, new=True) as active:
        mlflow.log_params({"seed": params.seed, "environment.id": params.environment.id})
        mlflow.log_params(train_params.model_dump())
        mlflow.set_tags({"framework": rllib.NAME, "environment": params.environment.id})
        with atomic_dir(paths.logs) as folder:
            curves.log(iterations, folder)
        log.info(
            "trained %d iterations, last mean episode return %.1f, MLflow run %s",
            len(iterations),
            iterations[-1]["episode_return_mean"],
            active.info.run_id,
        )
