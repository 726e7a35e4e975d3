"""The Triton model repository export writes: the same ONNX file, a config read off its graph."""

from __future__ import annotations

import re

import onnx

from {{ cookiecutter.package }}.config import Paths
from {{ cookiecutter.package }}.model_repository import CONFIG_FILE, TYPES
from {{ cookiecutter.package }}.serve.bundle import MODEL_FILE
from {{ cookiecutter.package }}.serve.settings import ServeSettings

NAME = ServeSettings().model_name


def test_the_repository_holds_the_served_model_under_the_served_name(paths: Paths) -> None:
    model_dir = paths.model_repository / NAME
    assert sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*")) == [
        "1",
        "1/model.onnx",
        CONFIG_FILE,
    ]
    assert (model_dir / "1" / "model.onnx").read_bytes() == (paths.bundle / MODEL_FILE).read_bytes()


def test_the_config_declares_every_tensor_of_the_graph_and_nothing_else(paths: Paths) -> None:
    config = (paths.model_repository / NAME / CONFIG_FILE).read_text()
    graph = onnx.load(paths.bundle / MODEL_FILE).graph
    declared = re.findall(r'\{ name: "([^"]+)" data_type: (\w+) dims: \[ ([\d, ]+) \]', config)
    expected = [
        (
            value.name,
            TYPES[value.type.tensor_type.elem_type],
            ", ".join(str(d.dim_value) for d in value.type.tensor_type.shape.dim[1:]) or "1",
        )
        for value in [*graph.input, *graph.output]
    ]
    assert declared == expected
    assert f'name: "{NAME}"' in config
    assert f"max_batch_size: {ServeSettings().max_batch_rows}" in config
