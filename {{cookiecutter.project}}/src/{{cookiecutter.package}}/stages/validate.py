"""``validate``: apply the gates; write the verdict (JSON), the report and the model card.

The baseline is a DVC dependency (``baseline/``, filled by ``<cli> baseline --ref``), so
``dvc repro`` is the one way to run the gates. Exits non-zero when a gate fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from .. import baseline, model_card
from ..config import Params, Paths, Tuned
from ..data import read_prepared
from ..files import md5, read_json
from ..gates import decide
from ..metrics import classification_metrics
from ..publish import publish_verdict
from ..report import render
from ..schema import Schema
from ..serve.bundle import METADATA_FILE, read_manifest
from ..serve.model import OnnxModel


def scorer(
    schema: Schema, features: pd.DataFrame, target: np.ndarray
) -> Callable[[OnnxModel], dict[str, float]]:
    """Score a served model on these test rows (how a baseline model is scored)."""
    columns = {name: features[name].to_list() for name in schema.features}
    return lambda model: classification_metrics(
        target, model.predict_columns(columns).probabilities, schema
    )


def privacy_ledger(
    statistics: dict[str, Any], train: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """The private releases about the training data and what each spent.

    The statistics when privacy is on, and the model when it was trained with
    ``train.dp_epsilon`` (and ``dp_delta`` where the mechanism has one).
    """
    ledger = {}
    if statistics["private"]:
        ledger["statistics"] = {"epsilon": statistics["epsilon"], "delta": statistics["delta"]}
    if train.get("dp_epsilon") is not None:
        ledger["training"] = {"epsilon": train["dp_epsilon"], "delta": train.get("dp_delta", 0.0)}
    return ledger


def run(params: Params, paths: Paths) -> None:
    """Judge the exported model; raise :class:`StageError` naming the failed gates."""
    schema = Schema.load(paths.schema)
    features, target = read_prepared(paths.test, schema)
    split = md5(paths.test)
    fairness = read_json(paths.fairness)
    statistics = read_json(paths.statistics)
    tuned = Tuned.load(paths.tuned)
    ledger = privacy_ledger(statistics, tuned.over(params.train))
    encrypted = read_json(paths.encrypted_parity)
    verdict = decide(
        read_json(paths.metrics),
        fairness,
        read_json(paths.parity),
        params.validate_,
        baseline.load(paths, scorer(schema, features, target.to_numpy()), split),
        model_sha256=read_manifest(paths.bundle)["model_sha256"],
        test_split_md5=split,
        privacy=params.privacy,
        ledger=ledger,
        encrypted=encrypted,
    )
    explanations = read_json(paths.explanations)
    facts = model_card.Facts(
        verdict=verdict,
        fairness=fairness,
        schema=schema,
        framework=read_json(paths.bundle / METADATA_FILE)["framework"],
        train_params=tuned.over(params.train),
        seed=params.seed,
        tuned=tuned,
        source=params.ingest.source.as_posix(),
        train_rows=len(read_prepared(paths.train, schema)[1]),
        train_md5=md5(paths.train),
        test_rows=len(target),
        explanations=explanations,
        top=params.explain.top,
        privacy=params.privacy,
        ledger=ledger,
        encryption=params.encryption,
        encrypted=encrypted,
    )
    report = render(verdict, explanations, params.explain.top, statistics)
    publish_verdict(paths, verdict, report, model_card.render(facts))
