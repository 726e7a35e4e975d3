"""The image task: labelled images in class folders, their checks, splits and ``params.yaml``.

The raw data is an ordinary image-folder layout, ``data/raw/images/<class>/<file>``, one
folder per class of ``data/schema.yaml``, so your own images replace the demo's as they are.
``data/schema.yaml`` declares the image's height, width and channels: ``prepare`` refuses a
file that does not decode or has another shape, naming it. The splits are arrays of pixels
(``.npz``) written byte for byte the same from the same images, so DVC sees no change.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, PositiveInt

from .config import (
    Bound,
    LoopParams,
    ParamsFile,
    ParityBound,
    StageError,
    ValidateParams,
    _Strict,
)
from .schema import ImageColumn, Schema

DEMO = "sklearn:digits"  # ingest.source of the bundled demo: scikit-learn's 8x8 digits
SHOWN_FILES = 5
# PIL's modes with one and three values per pixel: the schema's channels.
MODES = {1: ("L",), 3: ("RGB",)}


class IngestParams(_Strict):
    """``params.yaml: ingest``: the demo (:data:`DEMO`), or a folder of class folders."""

    source: str = DEMO


class PrepareParams(_Strict):
    """``params.yaml: prepare``: the stratified test share."""

    test_size: float = Field(gt=0, lt=1)


class PretrainParams(_Strict):
    """``params.yaml: pretrain``: the source task the backbone learns, and how.

    ``classes`` picks the training split's images the backbone is pretrained on; ``train``
    (the same keys as the ``train`` section's loop) is validated by the framework.
    """

    classes: list[int] = Field(min_length=2)
    train: dict[str, Any]


class ImageValidateParams(_Strict):
    """``params.yaml: validate``: the gates that apply to an image classifier."""

    thresholds: dict[str, Bound] = Field(default_factory=dict)  # on metrics/metrics.json
    max_regression: float = Field(ge=0)
    parity: ParityBound

    def gates(self) -> ValidateParams:
        """As the gates take them; images declare no sensitive feature to compare groups of."""
        return ValidateParams(fairness=None, **self.model_dump())


class ImageParams(ParamsFile):
    """All of an image project's ``params.yaml``."""

    seed: int
    ingest: IngestParams = IngestParams()
    prepare: PrepareParams
    pretrain: PretrainParams
    train: dict[str, Any]  # validated by the framework's Params when train runs
    validate_: ImageValidateParams = Field(alias="validate")


@dataclass(frozen=True)
class Images:
    """Pixels ``[rows, height, width, channels]`` (uint8), class labels and source files."""

    pixels: np.ndarray
    labels: np.ndarray
    files: np.ndarray

    def __len__(self) -> int:
        """How many images."""
        return len(self.labels)

    def take(self, rows: np.ndarray) -> Images:
        """The images at ``rows`` (indices or a mask)."""
        return Images(self.pixels[rows], self.labels[rows], self.files[rows])

    def of_classes(self, classes: list[int]) -> Images:
        """Only the images of ``classes``."""
        return self.take(np.isin(self.labels, classes))

    def columns(self, schema: Schema) -> dict[str, np.ndarray]:
        """The serving model's input: the pixels under the image column's name."""
        return {image_column(schema)[0]: self.pixels.astype(np.float32)}

    def write(self, path: Path) -> None:
        """Write as ``.npz`` with fixed timestamps: the same images give the same bytes."""
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in ("pixels", "labels", "files"):
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, getattr(self, name), allow_pickle=False)
                entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                archive.writestr(entry, buffer.getvalue(), zipfile.ZIP_DEFLATED)

    @classmethod
    def read(cls, path: Path) -> Images:
        """Read a split written by :meth:`write`."""
        with np.load(path, allow_pickle=False) as arrays:
            return cls(arrays["pixels"], arrays["labels"], arrays["files"])


def validation_split(images: Images, fraction: float, seed: int) -> tuple[Images, Images]:
    """A stratified ``fraction`` of ``images`` held out for early stopping, and the rest."""
    from sklearn.model_selection import train_test_split

    fit, val = train_test_split(
        np.arange(len(images)), test_size=fraction, random_state=seed, stratify=images.labels
    )
    return images.take(fit), images.take(val)


class BackboneParams(LoopParams):
    """``params.yaml: pretrain.train``: the backbone's shape and how it is pretrained.

    Each framework adds the ``device`` it can train on.
    """

    filters: list[PositiveInt] = Field(min_length=1)  # channels of each block
    dropout: float = Field(ge=0, lt=1)


class FineTuneParams(LoopParams):
    """``params.yaml: train``: fine-tuning a new head on the backbone."""

    # The pretrain stage's folder, or a backbone checkpoint of your own (DVC-tracked).
    backbone: Path = Path("models/backbone")
    # The backbone's architecture from random weights, every block trained: the baseline
    # fine-tuning is compared with.
    from_scratch: bool = False
    unfreeze: int = Field(default=0, ge=0)  # the backbone's last blocks trained with the head
    dropout: float = Field(ge=0, lt=1)


Arrays = tuple[np.ndarray, np.ndarray]  # float32 pixels, class indices


def training_arrays(
    images: Images, classes: list[int], fraction: float, seed: int
) -> tuple[Arrays, Arrays]:
    """The fitting and the validation share (stratified), labels as positions in ``classes``."""
    index = {cls: position for position, cls in enumerate(classes)}

    def arrays(part: Images) -> Arrays:
        labels = np.vectorize(index.__getitem__, otypes=[np.int64])(part.labels)
        return part.pixels.astype(np.float32), labels

    fit, val = validation_split(images, fraction, seed)
    return arrays(fit), arrays(val)


def check_backbone(shape: list[int], schema: Schema) -> ImageColumn:
    """The schema's image column, when a backbone reading images of ``shape`` fits it.

    Raises:
        StageError: the backbone reads images of another shape.
    """
    _, column = image_column(schema)
    if shape != column.shape:
        raise StageError(
            f"params.yaml: train.backbone: reads images of shape {shape}, "
            f"data/schema.yaml declares {column.shape} (height, width, channels)"
        )
    return column


def image_column(schema: Schema) -> tuple[str, ImageColumn]:
    """The schema's one image column, by name.

    Raises:
        StageError: the schema declares anything else.
    """
    columns = list(schema.columns.items())
    if len(columns) != 1 or not isinstance(columns[0][1], ImageColumn):
        raise StageError(
            "data/schema.yaml: the image task takes one column of type image, "
            f"found {', '.join(f'{name} ({column.type})' for name, column in columns)}"
        )
    return columns[0][0], columns[0][1]


def write_demo(folder: Path) -> int:
    """Write scikit-learn's bundled digits as 8-bit PNG files, one folder per digit.

    Their 0..16 intensities are scaled to 0..255 like any grayscale image's.
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.rint(digits.images * 255 / 16).astype(np.uint8)
    for number, (image, label) in enumerate(zip(pixels, digits.target, strict=True)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(folder / str(label) / f"{number:04d}.png")
    return len(pixels)


def read_folder(folder: Path, schema: Schema) -> Images:
    """Every image of the class folders, checked against the schema's image column.

    Raises:
        StageError: listing the folders that are no declared class and the files that do
            not decode or have another size or channel count than declared.
    """
    from PIL import Image, UnidentifiedImageError

    _, column = image_column(schema)
    classes = {str(cls): cls for cls in schema.target.classes}
    problems = [
        f"{path}: a folder of no declared class (data/schema.yaml: target.classes)"
        for path in sorted(folder.iterdir())
        if path.name not in classes and not path.name.startswith(".")
    ]
    pixels, labels, files = [], [], []
    for name, label in classes.items():
        for path in sorted((folder / name).glob("*")) if (folder / name).is_dir() else []:
            try:
                with Image.open(path) as image:
                    image.load()
                    found = (image.height, image.width, image.mode)
                    array = np.asarray(image, dtype=np.uint8)
            except (UnidentifiedImageError, OSError) as error:
                problems.append(f"{path}: not a readable image ({error})")
                continue
            if found[:2] != (column.height, column.width) or found[2] not in MODES[column.channels]:
                problems.append(
                    f"{path}: {found[1]}x{found[0]} {found[2]} image, expected "
                    f"{column.width}x{column.height} with {column.channels} channel(s) "
                    f"({' or '.join(MODES[column.channels])})"
                )
                continue
            pixels.append(array.reshape(column.shape))
            labels.append(label)
            files.append(path.relative_to(folder).as_posix())
    if problems:
        shown = problems[:SHOWN_FILES] + [f"... {len(problems) - SHOWN_FILES} more"] * (
            len(problems) > SHOWN_FILES
        )
        raise StageError("images do not match data/schema.yaml:\n  - " + "\n  - ".join(shown))
    if not labels:
        raise StageError(f"{folder}: no images; expected one folder per class with images")
    return Images(np.stack(pixels), np.asarray(labels, dtype=np.int64), np.asarray(files))
