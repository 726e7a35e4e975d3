"""Training is reproducible, metrics are written, and the parity gate catches a broken export.

Nothing here depends on the model type: the broken export adds an offset to whatever
probability output the ONNX graph has.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnx
import pandas as pd
from onnx import helper, numpy_helper

from {{ cookiecutter.package }} import frameworks
from {{ cookiecutter.package }}.config import Params, ParityBound, Paths, validated
from {{ cookiecutter.package }}.data import read_prepared
from {{ cookiecutter.package }}.files import read_json
from {{ cookiecutter.package }}.gates import parity_gate
from {{ cookiecutter.package }}.metrics import classification_metrics
from {{ cookiecutter.package }}.publish import parity
from {{ cookiecutter.package }}.schema import Schema
from {{ cookiecutter.package }}.serve.bundle import MODEL_FILE
from {{ cookiecutter.package }}.serve.model import OnnxModel

FRAMEWORK = frameworks.load()


def fit_twice(params: Params, paths: Paths, schema: Schema) -> list:
    features, target = read_prepared(paths.train, schema)
    train_params = validated(FRAMEWORK.Params, params.train, "params.yaml: train")
    return [FRAMEWORK.fit(features, target, schema, train_params, params.seed) for _ in "ab"]


def test_same_seed_and_data_give_the_same_model(
    params: Params, paths: Paths, schema: Schema, test_split: tuple[pd.DataFrame, pd.Series]
) -> None:
    first, second = fit_twice(params, paths, schema)
    features, _ = test_split
    assert np.array_equal(
        FRAMEWORK.predict_proba(first, features), FRAMEWORK.predict_proba(second, features)
    )
    assert FRAMEWORK.to_onnx(first, schema) == FRAMEWORK.to_onnx(second, schema)


def test_onnx_bytes_do_not_depend_on_the_hash_seed(paths: Paths) -> None:
    """Each DVC stage is a new process with its own PYTHONHASHSEED: the export must not vary."""
    script = (
        "import hashlib, sys; from pathlib import Path; "
        f"from {frameworks.__name__} import load; "
        f"from {Schema.__module__} import Schema; "
        "framework = load(); model = framework.load(Path(sys.argv[1])); "
        "onnx = framework.to_onnx(model, Schema.load(Path(sys.argv[2]))); "
        "print(hashlib.sha256(onnx).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script, str(paths.model), str(paths.schema)],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in (0, 11)  # seeds under which skl2onnx emits its opsets in different orders
    }
    assert digests == {OnnxModel.load(paths.bundle).sha256}


def test_evaluate_writes_the_metrics_of_the_saved_model(
    paths: Paths, schema: Schema, test_split: tuple[pd.DataFrame, pd.Series]
) -> None:
    features, target = test_split
    probabilities = FRAMEWORK.predict_proba(FRAMEWORK.load(paths.model), features)
    expected = classification_metrics(target.to_numpy(), probabilities, schema)
    assert read_json(paths.metrics) == expected
    assert set(expected) == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}


def test_fairness_metrics_cover_every_group_of_every_sensitive_feature(
    paths: Paths, schema: Schema, test_split: tuple[pd.DataFrame, pd.Series]
) -> None:
    features, _ = test_split
    fairness = read_json(paths.fairness)
    assert sorted(fairness) == sorted(schema.sensitive)
    for feature in schema.sensitive:
        groups = fairness[feature]["by_group"]
        assert set(groups) == set(features[feature])
        rates = [group["selection_rate"] for group in groups.values()]
        assert (
            abs(fairness[feature]["demographic_parity_difference"] - (max(rates) - min(rates)))
            < 1e-5
        )
        assert sum(group["count"] for group in groups.values()) == len(features)


def test_exported_model_matches_native_model(
    paths: Paths, test_split: tuple[pd.DataFrame, pd.Series]
) -> None:
    result = read_json(paths.parity)
    assert result["rows"] == len(test_split[0])
    assert result["max_abs_diff"] <= 1e-4
    assert result["label_agreement"] == 1.0


def offset_probabilities(model: onnx.ModelProto, offset: float) -> onnx.ModelProto:
    """The same model with ``offset`` added to its probability output: a subtly wrong export."""
    graph = model.graph
    output = graph.output[1]
    original = output.name
    for node in graph.node:
        node.output[:] = [f"{name}_raw" if name == original else name for name in node.output]
    graph.initializer.append(
        numpy_helper.from_array(np.array(offset, dtype=np.float32), "parity_offset")
    )
    graph.node.append(helper.make_node("Add", [f"{original}_raw", "parity_offset"], [original]))
    return model


def test_parity_gate_rejects_a_broken_onnx_model(
    paths: Paths, schema: Schema, test_split: tuple[pd.DataFrame, pd.Series]
) -> None:
    broken = offset_probabilities(onnx.load(paths.bundle / MODEL_FILE), 0.01)
    metadata = read_json(paths.bundle / "metadata.json")
    model = OnnxModel(broken.SerializeToString(), metadata)
    features, _ = test_split
    native = FRAMEWORK.predict_proba(FRAMEWORK.load(paths.model), features)
    result = parity(model, native, {name: features[name].to_list() for name in schema.features})

    assert abs(result["max_abs_diff"] - 0.01) < 1e-6
    gate = parity_gate(result, ParityBound(max_abs_diff=1e-4, min_label_agreement=1.0))
    assert gate.status == "failed"
    assert [check.passed for check in gate.checks] == [False, True]
