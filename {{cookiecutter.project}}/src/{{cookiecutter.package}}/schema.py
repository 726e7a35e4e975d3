"""The data contract, shared by data validation (training) and the serving API.

Loaded from ``data/schema.yaml`` for training and from the model bundle's ``metadata.json``
for serving, so a served model always speaks the schema it was trained on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, TypeAdapter, model_validator
from typing_extensions import TypedDict


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NumericColumn(_Strict):
    """A numeric feature with an optional inclusive range."""

    type: Literal["integer", "number"]
    min: float | None = None
    max: float | None = None


class CategoryColumn(_Strict):
    """A categorical feature with its closed set of categories."""

    type: Literal["category"]
    categories: list[str] = Field(min_length=1)


class ImageColumn(_Strict):
    """An image of ``height`` x ``width`` pixels, each ``channels`` values in ``[min, max]``.

    A request sends it as nested lists: rows of pixels (``[height][width]``), each pixel a
    list of its channels when there are several (``[height][width][channels]``). The model
    takes a ``[rows, height, width, channels]`` tensor.
    """

    type: Literal["image"]
    height: PositiveInt
    width: PositiveInt
    channels: Literal[1, 3] = 1  # grayscale or RGB
    min: float = 0.0
    max: float = 255.0  # 8-bit images

    @property
    def shape(self) -> list[int]:
        """The model input's dimensions after the batch."""
        return [self.height, self.width, self.channels]

    @property
    def request_shape(self) -> list[int]:
        """The nested lists of one image in a request: a grayscale pixel is one number."""
        return self.shape if self.channels > 1 else self.shape[:2]


Column = Annotated[NumericColumn | CategoryColumn | ImageColumn, Field(discriminator="type")]


class Target(_Strict):
    """The label column and its classes, in the order the model reports probabilities."""

    name: str
    classes: list[int] = Field(min_length=2)

    def labels(self, probabilities: np.ndarray) -> np.ndarray:
        """The most probable class of each row."""
        return np.asarray(self.classes)[probabilities.argmax(axis=1)]


class Schema(_Strict):
    """Feature columns, target and sensitive features of the dataset."""

    target: Target
    sensitive: list[str] = []
    columns: dict[str, Column] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Schema:
        if self.target.name in self.columns:
            raise ValueError(f"target {self.target.name!r} must not also be a feature column")
        for name in self.sensitive:
            if not isinstance(self.columns.get(name), CategoryColumn):
                raise ValueError(f"sensitive feature {name!r} must be a declared category column")
        return self

    @property
    def features(self) -> list[str]:
        """Feature names in declaration order (the model's input order)."""
        return list(self.columns)

    def unbounded(self) -> list[str]:
        """Numeric columns that lack ``min`` or ``max``: privacy needs a declared range."""
        return [
            name
            for name, column in self.columns.items()
            if isinstance(column, NumericColumn) and (column.min is None or column.max is None)
        ]

    @classmethod
    def load(cls, path: Path) -> Schema:
        """Read a schema from YAML (``data/schema.yaml``) or JSON (a model bundle)."""
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            return cls.model_validate(json.loads(text))
        import yaml  # Only training reads YAML; keeps the serving path free of it.

        return cls.model_validate(yaml.safe_load(text))

    def request_bytes(self, max_rows: int) -> int:
        """A generous bound on a well-formed ``/predict`` body of ``max_rows`` rows.

        Each value is counted at its longest (a category's longest name, 32 characters for a
        number) and the total doubled for whitespace, so no valid request is refused while a
        client cannot make the server buffer megabytes.
        """
        value = {name: _longest(column) for name, column in self.columns.items()}
        row = 2 + sum(len(name) + 4 + size for name, size in value.items())
        return max(1024, 2 * (16 + max_rows * (row + 2)))

    def request_adapter(self, max_rows: int) -> TypeAdapter[Any]:
        """Build the validator of a ``/predict`` body: ``{"rows": [{feature: value}, ...]}``.

        Rows are strict: no missing or extra fields, no type coercion, no NaN or infinity,
        numbers within the declared range and categories from the declared set.
        """
        fields: dict[str, Any] = {
            name: _request_type(column) for name, column in self.columns.items()
        }
        row = TypedDict("Row", fields)  # type: ignore[operator]
        row.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
        # Functional form: the field types exist only at run time, derived from the schema.
        request = TypedDict(  # type: ignore[operator]  # noqa: UP013
            "PredictRequest",
            {"rows": Annotated[list[row], Field(min_length=1, max_length=max_rows)]},
        )
        request.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
        return TypeAdapter(request)


# The model reads float32: a number beyond its range (a 400-digit integer, 1e39) cannot be
# fed to it, so an unbounded column is still bounded there and such values get a 422.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _longest(column: NumericColumn | CategoryColumn | ImageColumn) -> int:
    """The most characters one value of the column takes in a request."""
    if isinstance(column, CategoryColumn):
        return max(map(len, column.categories)) + 2
    if isinstance(column, ImageColumn):  # each number and its comma, plus the brackets
        return 32 * int(np.prod(column.shape)) + 2 * column.height * (column.width + 1)
    return 32


def _request_type(column: NumericColumn | CategoryColumn | ImageColumn) -> Any:
    if isinstance(column, CategoryColumn):
        return Literal[tuple(column.categories)]
    if isinstance(column, ImageColumn):
        bounds = Field(strict=True, ge=column.min, le=column.max, allow_inf_nan=False)
        pixel: Any = Annotated[float, bounds]
        for size in reversed(column.request_shape):
            pixel = Annotated[list[pixel], Field(min_length=size, max_length=size)]
        return pixel
    python_type = int if column.type == "integer" else float
    low = python_type(-FLOAT32_MAX if column.min is None else column.min)
    high = python_type(FLOAT32_MAX if column.max is None else column.max)
    return Annotated[python_type, Field(strict=True, ge=low, le=high, allow_inf_nan=False)]
