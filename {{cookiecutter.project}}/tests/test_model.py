"""Training is reproducible, metrics are written, and the parity gate catches a broken export."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx

from {{ cookiecutter.package }} import frameworks
from {{ cookiecutter.package }}.config import (
    Params,
    Paths,
)
from {{ cookiecutter.package }}.data import read_prepared
from {{ cookiecutter.package }}.export import parity
from {{ cookiecutter.package }}.files import read_json
from {{ cookiecutter.package }}.schema import Schema
from {{ cookiecutter.package }}.serve.model import OnnxModel
from {{ cookiecutter.package }}.validate import parity_gate


def test_same_seed_and_data_give_the_same_model(in_workspace: Path, schema: Schema) -> None:
    params = Params.load()
    features, target = read_prepared(Paths.train, schema)
    first = frameworks.fit(features, target, schema, params.train, params.seed)
    second = frameworks.fit(features, target, schema, params.train, params.seed)
    assert np.array_equal(
        frameworks.predict_proba(first, features), frameworks.predict_proba(second, features)
    )
    assert frameworks.to_onnx(first, schema) == frameworks.to_onnx(second, schema)


def test_onnx_bytes_do_not_depend_on_the_hash_seed(in_workspace: Path) -> None:
    """Each DVC stage is a new process with its own PYTHONHASHSEED: the export must not vary."""
    script = (
        "import hashlib; from pathlib import Path; "
        f"from {frameworks.__name__} import load, to_onnx; "
        f"from {Schema.__module__} import Schema; "
        "model = load(Path('models/model.joblib')); "
        "print(hashlib.sha256(to_onnx(model, Schema.load(Path('data/schema.yaml')))).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in (0, 11)  # seeds under which skl2onnx emits its opsets in different orders
    }
    assert len(digests) == 1
    assert len(next(iter(digests))) == 64


def test_evaluate_writes_metrics_and_fairness(in_workspace: Path) -> None:
    metrics = read_json(Paths.metrics)
    assert set(metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert 0.5 < metrics["accuracy"] <= 1.0  # better than chance; the gates own the thresholds
    fairness = read_json(Paths.fairness)["gender"]
    assert set(fairness["by_group"]) == {"female", "male"}
    rates = [group["selection_rate"] for group in fairness["by_group"].values()]
    assert abs(fairness["demographic_parity_difference"] - abs(rates[0] - rates[1])) < 1e-5


def test_exported_model_matches_native_model(in_workspace: Path) -> None:
    result = read_json(Paths.parity)
    assert result["rows"] == 750
    assert result["max_abs_diff"] <= 1e-4
    assert result["label_agreement"] == 1.0


def test_parity_gate_rejects_a_broken_onnx_model(in_workspace: Path, schema: Schema) -> None:
    graph = onnx.load(Paths.bundle / "model.onnx")
    classifier = next(node for node in graph.graph.node if node.op_type == "LinearClassifier")
    intercepts = next(
        attribute for attribute in classifier.attribute if attribute.name == "intercepts"
    )
    intercepts.floats[:] = [value + 0.5 for value in intercepts.floats]  # a subtly wrong export
    model = OnnxModel(graph.SerializeToString(), read_json(Paths.bundle / "metadata.json"))

    features, _ = read_prepared(Paths.test, schema)
    native = frameworks.predict_proba(frameworks.load(Paths.model), features)
    result = parity(model, native, {name: features[name].to_list() for name in schema.features})

    assert result["max_abs_diff"] > 1e-4
    gate = parity_gate(result, max_abs_diff=1e-4, min_agreement=1.0)
    assert gate.status == "failed"
    assert not gate.checks[0].passed
