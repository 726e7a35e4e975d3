"""Shared fixtures: the pipeline run once on the project's own data, in a scratch copy.

Everything the tests need about the data comes from ``data/schema.yaml`` and the exported
bundle's example rows, so the tests keep passing when you bring your own data and model.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from {{ cookiecutter.package }}.cli import STAGES
from {{ cookiecutter.package }}.config import Params, Paths
from {{ cookiecutter.package }}.data import read_prepared
from {{ cookiecutter.package }}.files import read_json
from {{ cookiecutter.package }}.schema import CategoryColumn, NumericColumn, Schema
from {{ cookiecutter.package }}.serve.bundle import (
    EXAMPLE_FILE,
    METADATA_FILE,
    MODEL_FILE,
    write_bundle,
)
from {{ cookiecutter.package }}.serve.model import OnnxModel
from {{ cookiecutter.package }}.smoke import free_port
from {{ cookiecutter.package }}.stages import (
    evaluate,
    export,
    ingest,
    prepare,
    train,
    tune,
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
    for stage in (ingest, prepare, tune, train, evaluate, export):
        assert stage.__name__.rpartition(".")[2] in STAGES
        stage.run(params, paths)
    return paths


@pytest.fixture(scope="session")
def training_split(paths: Paths, schema: Schema) -> pd.DataFrame:
    """The training split, features and target."""
    features, target = read_prepared(paths.train, schema)
    return features.assign(**{target.name: target})


@pytest.fixture(scope="session")
def bounded(schema: Schema, training_split: pd.DataFrame) -> Schema:
    """The schema with a range for every number (privacy needs one): declared, else observed."""
    columns = {
        name: column.model_copy(update={"min": low, "max": high})
        if isinstance(column, NumericColumn)
        else column
        for name, column in schema.columns.items()
        for low, high in [observed(column, training_split[name])]
    }
    return schema.model_copy(update={"columns": columns})


def observed(column: NumericColumn | CategoryColumn, values: pd.Series) -> tuple[float, float]:
    """A numeric column's declared range, its observed bounds where it declares none."""
    if isinstance(column, CategoryColumn):
        return (0.0, 0.0)
    low = values.min() if column.min is None else column.min
    high = values.max() if column.max is None else column.max
    return (float(low), float(high))


@pytest.fixture(scope="session")
def test_split(paths: Paths, schema: Schema) -> tuple[pd.DataFrame, pd.Series]:
    return read_prepared(paths.test, schema)


@pytest.fixture(scope="session")
def rows(test_split: tuple[pd.DataFrame, pd.Series]) -> list[dict[str, Any]]:
    """Twelve real test rows as the API receives them."""
    features, _ = test_split
    return features.head(12).astype(object).to_dict(orient="records")


def rebundle(
    paths: Paths,
    folder: Path,
    metadata: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """A copy of the exported bundle in ``folder``: ``metadata`` replaces its own, and
    ``extra`` adds JSON files by name."""
    write_bundle(
        folder,
        (paths.bundle / MODEL_FILE).read_bytes(),
        metadata or read_json(paths.bundle / METADATA_FILE),
        read_json(paths.bundle / EXAMPLE_FILE),
        extra,
    )
    return folder


@pytest.fixture(scope="session")
def example(paths: Paths) -> dict[str, Any]:
    """The bundle's example: rows and the predictions export computed for them."""
    return read_json(paths.bundle / EXAMPLE_FILE)


MAX_ROWS = 5
MAX_BODY = max(16384, 64 * len(SCHEMA.features) * (MAX_ROWS + 1))  # roomy for MAX_ROWS rows


class Client:
    def __init__(self, port: int) -> None:
        self.port = port

    def exchange(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, bytes, dict[str, str]]:
        """Status, raw body and headers (names in lower case)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            raw = response.read()
            return response.status, raw, {k.lower(): v for k, v in response.getheaders()}
        finally:
            connection.close()

    def call(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, Any]:
        """Status and body: decoded JSON, or text."""
        status, raw, answered = self.exchange(method, path, body, headers)
        if answered.get("content-type", "").startswith("application/json"):
            return status, json.loads(raw)
        return status, raw.decode()

    def predict(self, payload: Any) -> tuple[int, Any]:
        return self.call(
            "POST", "/predict", json.dumps(payload).encode(), {"Content-Type": "application/json"}
        )


@pytest.fixture(scope="module")
def server(paths: Paths) -> Iterator[Client]:
    port = free_port()
    env = {
        **os.environ,
        "SERVE_PORT": str(port),
        "SERVE_MODEL_DIR": str(paths.bundle),
        "SERVE_MAX_BATCH_ROWS": str(MAX_ROWS),
        "SERVE_MAX_BODY_BYTES": str(MAX_BODY),
        "SERVE_GIT_SHA": "abc1234",
        "SERVE_HEADER_TIMEOUT_SECONDS": "1",
        "SERVE_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", f"{OnnxModel.__module__.split('.')[0]}.serve"], env=env
    )
    client = Client(port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if client.call("GET", "/ready")[0] == 200:
                break
        except OSError:
            time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("server never became ready")
    yield client
    process.send_signal(signal.SIGTERM)
    # uvicorn drains, then re-raises SIGTERM so supervisors see why it stopped.
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)


@pytest.fixture(scope="session")
def model(paths: Paths) -> OnnxModel:
    return OnnxModel.load(paths.bundle)
