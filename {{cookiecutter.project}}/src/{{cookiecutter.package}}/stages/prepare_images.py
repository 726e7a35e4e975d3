"""``prepare``: check every image against ``data/schema.yaml`` and split them with a fixed seed.

Nothing is written unless every image is readable and of the declared shape, so DVC never
caches a partial split.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.model_selection import train_test_split

from ..config import Paths, StageError
from ..files import atomic_path
from ..images import ImageParams, read_folder
from ..schema import Schema

log = logging.getLogger(__name__)

MIN_IMAGES_PER_CLASS = 2  # a stratified split needs two of each class: one per side


def run(params: ImageParams, paths: Paths) -> None:
    """Write a stratified train/test split of the checked images."""
    schema = Schema.load(paths.schema)
    images = read_folder(paths.raw, schema)
    counts = {cls: int((images.labels == cls).sum()) for cls in schema.target.classes}
    if scarce := {cls: count for cls, count in counts.items() if count < MIN_IMAGES_PER_CLASS}:
        found = ", ".join(f"class {cls}: {count} images" for cls, count in scarce.items())
        raise StageError(
            f"{paths.raw}: every class needs at least {MIN_IMAGES_PER_CLASS} images to be "
            f"learned and tested ({found})"
        )
    train, test = train_test_split(
        np.arange(len(images)),
        test_size=params.prepare.test_size,
        random_state=params.seed,
        stratify=images.labels,
    )
    for rows, path in ((train, paths.train), (test, paths.test)):
        with atomic_path(path) as temporary:
            images.take(np.sort(rows)).write(temporary)
    log.info("prepared %d training and %d test images", len(train), len(test))
