"""``ingest``: bring the images into ``data/raw/images``, one folder per class.

The default writes the bundled demo (scikit-learn's handwritten digits, no download);
``ingest.source`` may name a folder of class folders of your own instead.
"""

from __future__ import annotations

import logging
import shutil

from ..config import Paths, StageError
from ..files import atomic_dir
from ..images import DEMO, ImageParams, write_demo

log = logging.getLogger(__name__)


def run(params: ImageParams, paths: Paths) -> None:
    """Write the demo images, or copy the class folders ``ingest.source`` names."""
    source = params.ingest.source
    if source != DEMO and not (paths.root / source).is_dir():
        raise StageError(
            f"params.yaml: ingest.source: {source} is not a folder (expected one folder of "
            f"images per class, or {DEMO} for the demo)"
        )
    with atomic_dir(paths.raw) as folder:
        if source == DEMO:
            count = write_demo(folder)
        else:
            shutil.copytree(paths.root / source, folder, dirs_exist_ok=True)
            count = sum(1 for path in folder.rglob("*") if path.is_file())
    log.info("ingested %d images from %s into %s", count, source, paths.raw)
