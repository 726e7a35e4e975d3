"""Typed parameters from ``params.yaml`` and the fixed paths of the pipeline.

Unknown keys are errors (``extra="forbid"``): a typo in ``params.yaml`` must not silently
fall back to a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from .frameworks import TrainParams


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngestParams(_Strict):
    """Where the raw data comes from."""

    source: Path


class PrepareParams(_Strict):
    """How the validated data is split."""

    test_size: float = Field(gt=0, lt=1)


class FairnessBound(_Strict):
    """Largest allowed between-group difference of a Fairlearn metric."""

    metric: Literal["demographic_parity_difference", "equalized_odds_difference"]
    max: float = Field(ge=0, le=1)


class ParityBound(_Strict):
    """How closely the ONNX model must reproduce the native model."""

    max_abs_diff: float = Field(ge=0)
    min_label_agreement: float = Field(ge=0, le=1)


class ValidateParams(_Strict):
    """The gates a model must pass before it may ship."""

    thresholds: dict[str, float] = {}
    max_regression: float = Field(ge=0)
    fairness: FairnessBound
    parity: ParityBound


class Params(_Strict):
    """All of ``params.yaml``."""

    seed: int
    ingest: IngestParams
    prepare: PrepareParams
    train: TrainParams
    validate_: ValidateParams = Field(alias="validate")

    @classmethod
    def load(cls, path: Path = Path("params.yaml")) -> Params:
        """Read and check ``params.yaml``."""
        return cls.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


class Paths:
    """Files the stages exchange, relative to the project root (where DVC runs them)."""

    schema = Path("data/schema.yaml")
    raw = Path("data/raw/dataset.csv")
    train = Path("data/prepared/train.csv")
    test = Path("data/prepared/test.csv")
    model = Path("models/model.joblib")
    bundle = Path("models/serving")
    metrics = Path("metrics/metrics.json")
    fairness = Path("metrics/fairness.json")
    parity = Path("metrics/parity.json")
    confusion = Path("plots/confusion.csv")
    roc = Path("plots/roc.csv")
    verdict = Path("reports/verdict.json")
    report = Path("reports/report.md")
    mlflow_run = Path("mlflow/last_run_id")
