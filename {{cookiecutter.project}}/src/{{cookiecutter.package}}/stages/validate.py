"""``validate``: apply the gates; write the verdict (JSON), the report and the model card.

The baseline is a DVC dependency (``baseline/``, filled by ``<cli> baseline --ref``), so
``dvc repro`` is the one way to run the gates. Exits non-zero when a gate fails.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import baseline, model_card
from ..config import Params, Paths, StageError, Tuned
from ..data import read_prepared
from ..files import atomic_path, md5, read_json, write_json
from ..gates import decide
from ..report import render
from ..schema import Schema
from ..serve.bundle import METADATA_FILE, read_manifest

log = logging.getLogger(__name__)


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
        baseline.load(paths, schema, features, target.to_numpy(), split),
        model_sha256=read_manifest(paths.bundle)["model_sha256"],
        test_split_md5=split,
        privacy=params.privacy,
        ledger=ledger,
        encrypted=encrypted,
    )
    write_json(paths.verdict, verdict.to_json())
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
    written = {
        paths.report: render(verdict, explanations, params.explain.top, statistics),
        paths.model_card: model_card.render(facts),
    }
    for path, text in written.items():
        with atomic_path(path) as temporary:
            temporary.write_text(text, encoding="utf-8")
    for gate in verdict.gates:
        log.info("gate %-12s %-14s %s", gate.name, gate.status, gate.detail)
    if verdict.failed:
        failed = "; ".join(gate.failure() for gate in verdict.failed)
        raise StageError(f"model rejected by gate(s): {failed}; see {paths.report}")
