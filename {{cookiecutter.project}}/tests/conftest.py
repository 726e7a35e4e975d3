"""Shared fixtures: a trained model and its ONNX bundle, built once from the demo data."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from {{ cookiecutter.package }}.config import (
    Params,
    Paths,
)
from {{ cookiecutter.package }}.schema import Schema

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def schema() -> Schema:
    return Schema.load(PROJECT / Paths.schema)


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory, schema: Schema) -> Iterator[Path]:
    """A copy of the project's inputs with ingest, prepare, train, evaluate and export run in it."""
    from {{ cookiecutter.package }}.data import ingest, prepare
    from {{ cookiecutter.package }}.evaluate import evaluate
    from {{ cookiecutter.package }}.export import export
    from {{ cookiecutter.package }}.train import train

    root = tmp_path_factory.mktemp("workspace")
    shutil.copytree(
        PROJECT / "data", root / "data", ignore=shutil.ignore_patterns("raw", "prepared")
    )
    shutil.copy(PROJECT / "params.yaml", root)
    previous = Path.cwd()
    os.chdir(root)
    try:
        params = Params.load()
        ingest(params.ingest.source, Paths.raw)
        prepare(Paths.raw, schema, params.prepare.test_size, params.seed, Paths.train, Paths.test)
        train(params, schema)
        evaluate(schema)
        export(schema)
        yield root
    finally:
        os.chdir(previous)


@pytest.fixture
def in_workspace(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(workspace)
    return workspace
