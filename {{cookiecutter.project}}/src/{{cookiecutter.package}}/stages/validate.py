"""``validate``: apply the gates; write the verdict (JSON) and the report (Markdown).

The baseline is a DVC dependency (``baseline/``, filled by ``<cli> baseline --ref``), so
``dvc repro`` is the one way to run the gates. Exits non-zero when a gate fails.
"""

from __future__ import annotations

import logging

from .. import baseline
from ..config import Params, Paths, StageError
from ..data import read_prepared
from ..files import atomic_path, md5, read_json, write_json
from ..gates import decide
from ..report import render
from ..schema import Schema
from ..serve.bundle import read_manifest

log = logging.getLogger(__name__)


def run(params: Params, paths: Paths) -> None:
    """Judge the exported model; raise :class:`StageError` naming the failed gates."""
    schema = Schema.load(paths.schema)
    features, target = read_prepared(paths.test, schema)
    split = md5(paths.test)
    verdict = decide(
        read_json(paths.metrics),
        read_json(paths.fairness),
        read_json(paths.parity),
        params.validate_,
        baseline.load(paths, schema, features, target.to_numpy(), split),
        model_sha256=read_manifest(paths.bundle)["model_sha256"],
        test_split_md5=split,
    )
    write_json(paths.verdict, verdict.to_json())
    with atomic_path(paths.report) as temporary:
        temporary.write_text(render(verdict), encoding="utf-8")
    for gate in verdict.gates:
        log.info("gate %-12s %-14s %s", gate.name, gate.status, gate.detail)
    if verdict.failed:
        failed = "; ".join(gate.failure() for gate in verdict.failed)
        raise StageError(f"model rejected by gate(s): {failed}; see {paths.report}")
