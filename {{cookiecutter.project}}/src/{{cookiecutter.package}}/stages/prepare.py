"""``prepare``: validate the raw data against the data contract and split it with a fixed seed.

Nothing is written unless the whole dataset is valid and splittable, so DVC never caches a
partial split.
"""

from __future__ import annotations

import logging

from sklearn.model_selection import train_test_split

from ..config import Params, Paths, StageError
from ..data import DataValidationError, read_raw
from ..files import atomic_path
from ..schema import Schema

log = logging.getLogger(__name__)

MIN_ROWS_PER_CLASS = 2  # a stratified split needs two of each class: one per side


def run(params: Params, paths: Paths) -> None:
    """Write a stratified train/test split of the validated raw data."""
    schema = Schema.load(paths.schema)
    try:
        frame = read_raw(paths.raw, schema)
    except DataValidationError as error:
        raise StageError(f"{paths.raw}: {error}") from None
    counts = frame[schema.target.name].value_counts()
    scarce = {cls: int(counts.get(cls, 0)) for cls in schema.target.classes}
    scarce = {cls: count for cls, count in scarce.items() if count < MIN_ROWS_PER_CLASS}
    if scarce:
        found = ", ".join(f"class {cls}: {count} rows" for cls, count in scarce.items())
        raise StageError(
            f"{paths.raw}: column {schema.target.name!r}: every class needs at least "
            f"{MIN_ROWS_PER_CLASS} rows to be learned and tested ({found})"
        )
    try:
        train, test = train_test_split(
            frame,
            test_size=params.prepare.test_size,
            random_state=params.seed,
            stratify=frame[schema.target.name],
        )
    except ValueError as error:
        raise StageError(
            f"{paths.raw}: {len(frame)} rows cannot be split with prepare.test_size="
            f"{params.prepare.test_size}: {error}"
        ) from None
    for part, path in ((train, paths.train), (test, paths.test)):
        with atomic_path(path) as temporary:
            part.to_csv(temporary, index=False)
    log.info("prepared %d training and %d test rows", len(train), len(test))
