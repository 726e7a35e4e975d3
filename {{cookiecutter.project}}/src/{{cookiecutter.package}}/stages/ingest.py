"""``ingest``: bring the raw data into the pipeline (the default copies the shipped demo CSV)."""

from __future__ import annotations

import logging
import shutil

from ..config import Params, Paths, StageError
from ..files import atomic_path

log = logging.getLogger(__name__)


def run(params: Params, paths: Paths) -> None:
    """Copy ``ingest.source`` to the raw data file."""
    source = paths.root / params.ingest.source
    if not source.is_file():
        raise StageError(
            f"ingest source {params.ingest.source} does not exist (params.yaml: ingest.source)"
        )
    with atomic_path(paths.raw) as temporary:
        shutil.copyfile(source, temporary)
    log.info("ingested %s -> %s", params.ingest.source, paths.raw)
