"""``export``: the policy network as the ONNX serving bundle, and its parity.

Parity with the native policy is measured on the observations ``evaluate`` recorded (see
:mod:`..publish`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import environment
from ..config import Paths
from ..environment import AgentParams
from ..frameworks import rllib
from ..publish import EXAMPLE_ROWS, parity, publish
from ..serve.model import OnnxModel


def run(params: AgentParams, paths: Paths) -> None:
    """Write the serving bundle and the parity metrics; the validate stage gates parity."""
    schema = environment.schema(environment.make(params.environment), params.environment)
    module = rllib.load(paths.model)
    onnx_bytes = rllib.to_onnx(module, schema)
    metadata = {
        "schema": schema.model_dump(mode="json"),
        "framework": rllib.NAME,
        "environment": params.environment.id,
    }
    model = OnnxModel(onnx_bytes, metadata)
    observations = pd.read_csv(paths.test)[schema.features].to_numpy(np.float32)
    columns = {name: observations[:, index] for index, name in enumerate(schema.features)}
    result = parity(model, rllib.probabilities(module, observations), columns)
    rows = [
        {name: float(value) for name, value in zip(schema.features, row, strict=True)}
        for row in observations[:EXAMPLE_ROWS]
    ]
    publish(paths, model, onnx_bytes, rows, result)
