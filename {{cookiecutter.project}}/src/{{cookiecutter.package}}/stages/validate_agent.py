"""``validate``: apply the gates to the agent; write the verdict, the report and the model card.

The thresholds and the baseline judge the evaluation's episode returns; a baseline model
plays the same seeded episodes. Exits non-zero when a gate fails.
"""

from __future__ import annotations

import json

import numpy as np

from .. import baseline, environment
from ..config import Paths
from ..environment import AgentParams
from ..frameworks import rllib
from ..publish import card_header, publish_verdict, verdict_line
from ..report import render
from ..serve.model import OnnxModel
from ..verdict import Verdict

# Gates of the tabular task that cannot apply to an agent, and why.
INAPPLICABLE = {
    "fairness": "an agent has no sensitive features to compare groups of",
    "encrypted": "the policy network is not linear; encrypted inference needs a linear model",
    "privacy": "an agent learns from its environment, not from personal data",
}


def model_card(params: AgentParams, verdict: Verdict) -> str:
    """What the agent is, how it was trained and judged, and what was not checked."""
    metrics = verdict.metrics
    lines = [
        *card_header(
            f"{rllib.NAME} (PPO), the policy network exported to ONNX; served by onnxruntime, "
            "which answers each observation with the most probable action.",
            verdict,
        ),
        f"- Environment: `{params.environment.id}` with config "
        f"`{json.dumps(params.environment.config, sort_keys=True)}`",
        f"- Training parameters (seed {params.seed}): `{json.dumps(params.train, sort_keys=True)}`",
        "",
        "## Evaluation",
        "",
        f"- {metrics['episodes']:g} episodes with seeds {params.seed} to "
        f"{params.seed + params.evaluate.episodes - 1}, the greedy action at each step.",
        f"- Return: mean {metrics['mean_return']:g}, standard deviation "
        f"{metrics['std_return']:g}, worst {metrics['min_return']:g}.",
        verdict_line(verdict),
        "",
        "## Limitations",
        "",
        "- Judged only in the simulated environment above, on the seeds listed: the returns say",
        "  nothing about observations outside its observation space or about a changed world.",
        *[f"- Not checked: {gate} ({reason})." for gate, reason in INAPPLICABLE.items()],
    ]
    return "\n".join(lines) + "\n"


def run(params: AgentParams, paths: Paths) -> None:
    """Judge the exported policy; raise :class:`StageError` naming the failed gates."""
    env = environment.make(params.environment)
    seeds = environment.seeds(params.seed, params.evaluate)

    def score(model: OnnxModel) -> dict[str, float]:
        def act(observations: np.ndarray) -> np.ndarray:
            columns = {name: observations[:, i] for i, name in enumerate(model.inputs)}
            return model.predict_columns(columns).labels

        return environment.return_metrics(environment.episodes(env, act, seeds)[0])

    verdict = baseline.judged(paths, params.validate_.gates(), score, INAPPLICABLE)
    publish_verdict(paths, verdict, render(verdict), model_card(params, verdict))
