"""RLlib: PPO on the project's gymnasium environment, on a local Ray.

The learned policy is RLlib's default PyTorch module (a multilayer perceptron); ``save``
keeps the module alone (its weights and how to rebuild it), not the algorithm's optimizer
and replay state, so the model DVC tracks is what is served. ``to_onnx`` exports the same
network with a softmax and the chosen action.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import onnx
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from ..environment import Act, EnvironmentParams
from . import quiet

if TYPE_CHECKING:
    from ray.rllib.core.rl_module.rl_module import RLModule

    from ..schema import Schema

NAME = "rllib"
OPSET = 18
log = logging.getLogger(__name__)
# A local Ray sized for a laptop or a CI runner: 2 CPUs, no dashboard, a small object store.
LOCAL_RAY = {"num_cpus": 2, "include_dashboard": False, "object_store_memory": 200_000_000}
# What each iteration reports, by RLlib's result keys.
CURVES = {
    "episode_return_mean": ("env_runners", "episode_return_mean"),
    "episode_len_mean": ("env_runners", "episode_len_mean"),
    "policy_loss": ("learners", "default_policy", "policy_loss"),
    "entropy": ("learners", "default_policy", "entropy"),
}


class Params(BaseModel):
    """``params.yaml: train`` for PPO."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iterations: PositiveInt = 10  # PPO iterations, each on train_batch_size environment steps
    learning_rate: float = Field(default=3e-4, gt=0)
    train_batch_size: PositiveInt = 2000
    minibatch_size: PositiveInt = 128
    epochs: PositiveInt = 10  # passes of SGD over each batch
    gamma: float = Field(default=0.99, gt=0, le=1)  # discount
    hidden: list[PositiveInt] = Field(default=[64, 64], min_length=1)
    # Environment runners besides the driver: 0 samples on the driver, deterministically.
    env_runners: int = Field(default=0, ge=0)
    device: Literal["cpu", "auto"] = "cpu"  # auto: the learner uses a GPU when Ray sees one


def fit(
    environment: EnvironmentParams, params: Params, seed: int
) -> tuple[RLModule, list[dict[str, float]]]:
    """Train PPO; return the policy module and each iteration's curves."""
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    # Always a local Ray ("local" overrides RAY_ADDRESS, which may name the cluster CI's
    # workflow offers): training on a cluster is not built for agents yet.
    ray.init(address="local", **LOCAL_RAY, log_to_driver=False)
    config = (
        PPOConfig()
        .environment(environment.id, env_config=environment.config)
        .env_runners(num_env_runners=params.env_runners)
        .learners(num_gpus_per_learner=1 if params.device == "auto" and _gpu() else 0)
        .training(
            lr=params.learning_rate,
            gamma=params.gamma,
            train_batch_size_per_learner=params.train_batch_size,
            minibatch_size=params.minibatch_size,
            num_epochs=params.epochs,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=list(params.hidden)))
        .debugging(seed=seed)
        .framework("torch")
    )
    algorithm = config.build_algo()
    curves = []
    try:
        for iteration in range(1, params.iterations + 1):
            result = algorithm.train()
            curve = {name: float(_find(result, keys)) for name, keys in CURVES.items()}
            curves.append(curve)
            log.info("iteration %d/%d: %s", iteration, params.iterations, curve)
        return algorithm.get_module(), curves
    finally:
        algorithm.stop()
        ray.shutdown()


def _gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _find(result: dict[str, Any], keys: tuple[str, ...]) -> float:
    value: Any = result
    for key in keys:
        value = value.get(key, float("nan")) if isinstance(value, dict) else float("nan")
    return value


def probabilities(module: RLModule, observations: np.ndarray) -> np.ndarray:
    """Each action's probability under the policy, one row per observation."""
    import torch

    with torch.no_grad():
        logits = module.forward_inference({"obs": torch.from_numpy(observations)})
        return torch.softmax(logits["action_dist_inputs"], dim=1).numpy()


def act(module: RLModule) -> Act:
    """The greedy policy: the most probable action for each observation."""
    return lambda observations: probabilities(module, observations).argmax(axis=1)


def save(module: RLModule, folder: Path) -> None:
    """Persist the policy module into an empty folder.

    The spaces are pickled with it, random generator included: one seeded from the clock
    would change the saved bytes (and DVC's hash) on every run of the same training.
    """
    for space in (module.observation_space, module.action_space):
        space.seed(0)
    module.save_to_path(str(folder.resolve()))


def load(folder: Path) -> RLModule:
    """Load a module written by :func:`save`."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    return RLModule.from_checkpoint(str(folder.resolve()))


def to_onnx(module: RLModule, schema: Schema) -> bytes:
    """The policy network in ONNX, with the contract every framework's export keeps.

    One ``[N, 1]`` input per observation component; outputs the greedy action (``label``)
    and each action's probability (``probabilities``).
    """
    import torch

    class Policy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.module = module

        def forward(self, *components: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits = self.module.forward_inference({"obs": torch.cat(components, dim=1)})
            probabilities = torch.softmax(logits["action_dist_inputs"], dim=1)
            return probabilities.argmax(dim=1), probabilities

    names = schema.features
    rows = torch.export.Dim("rows")  # one dimension: every input has the same rows
    buffer = io.BytesIO()
    with quiet("torch.onnx", "onnx_ir", "onnxscript"), warnings.catch_warnings():
        # The inputs share one batch dimension, named once: torch says so once per input.
        warnings.filterwarnings("ignore", "# The axis name", UserWarning)
        torch.onnx.export(
            Policy().eval(),
            tuple(torch.zeros(2, 1) for _ in names),
            buffer,
            input_names=names,
            output_names=["label", "probabilities"],
            dynamic_shapes=(tuple({0: rows} for _ in names),),
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    exported = onnx.load_from_string(buffer.getvalue())
    for node in exported.graph.node:
        # Stack traces with this file's absolute path: the bytes must not depend on the folder.
        del node.metadata_props[:]
    return exported.SerializeToString()
