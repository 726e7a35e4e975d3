"""Shared fixtures: the pipeline run once on the project's own data, in a scratch copy.

Everything the tests need about the data comes from ``data/schema.yaml`` and the exported
bundle's example rows, so the tests keep passing when you bring your own data and model.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from {{ cookiecutter.package }}.cli import STAGES
from {{ cookiecutter.package }}.config import Params, Paths
from {{ cookiecutter.package }}.data import read_prepared
from {{ cookiecutter.package }}.files import read_json
from {{ cookiecutter.package }}.schema import Schema
from {{ cookiecutter.package }}.serve.bundle import EXAMPLE_FILE
from {{ cookiecutter.package }}.stages import (
    evaluate,
    export,
    ingest,
    prepare,
    train,
)

PROJECT = Path(__file__).resolve().parents[1]
SCHEMA = Schema.load(PROJECT / Paths.schema)  # module level: tests are parametrized from it


@pytest.fixture(scope="session")
def schema() -> Schema:
    return SCHEMA


@pytest.fixture(scope="session")
def params() -> Params:
    return Params.load(PROJECT / Paths.params)


@pytest.fixture(scope="session")
def paths(tmp_path_factory: pytest.TempPathFactory, params: Params) -> Paths:
    """A scratch copy of the project's inputs with every stage but validate run in it."""
    root = tmp_path_factory.mktemp("workspace")
    shutil.copytree(
        PROJECT / "data", root / "data", ignore=shutil.ignore_patterns("raw", "prepared")
    )
    shutil.copy(PROJECT / Paths.params, root)
    paths = Paths().at(root)
    for stage in (ingest, prepare, train, evaluate, export):
        assert stage.__name__.rpartition(".")[2] in STAGES
        stage.run(params, paths)
    return paths


@pytest.fixture(scope="session")
def test_split(paths: Paths, schema: Schema) -> tuple[pd.DataFrame, pd.Series]:
    return read_prepared(paths.test, schema)


@pytest.fixture(scope="session")
def rows(test_split: tuple[pd.DataFrame, pd.Series]) -> list[dict[str, Any]]:
    """Twelve real test rows as the API receives them."""
    features, _ = test_split
    return features.head(12).astype(object).to_dict(orient="records")


@pytest.fixture(scope="session")
def example(paths: Paths) -> dict[str, Any]:
    """The bundle's example: rows and the predictions export computed for them."""
    return read_json(paths.bundle / EXAMPLE_FILE)
