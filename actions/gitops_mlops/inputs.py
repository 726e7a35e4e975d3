"""Typed action inputs, read once from the ``INPUT_<NAME>`` variables ``action.yml`` passes.

Each script declares its inputs as a frozen dataclass (``base_image`` is the input
``base-image``) and calls :func:`read` once in ``main``. Defaults live in ``action.yml`` only:
an input that ``action.yml`` does not pass through ``env:`` is an error here, not a silent
default, and a test checks that the three lists (dataclass, declared, passed) are the same.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from typing import Any, TypeVar

from . import workflow

T = TypeVar("T")


def env_name(field: str) -> str:
    """The variable that carries input ``field`` (``base_image`` -> ``INPUT_BASE_IMAGE``)."""
    return f"INPUT_{field.upper()}"


def input_name(field: str) -> str:
    """The kebab-case input name of dataclass field ``field``."""
    return field.replace("_", "-")


def _convert(name: str, raw: str, kind: Any) -> object:
    if kind is bool:
        if raw not in ("true", "false"):
            workflow.fail(f"input {name} must be 'true' or 'false', got {raw!r}")
        return raw == "true"
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            workflow.fail(f"input {name} must be a number, got {raw!r}")
    return raw


def read(cls: type[T]) -> T:
    """Build ``cls`` from the environment; fail the step naming every input that is missing."""
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    missing = [input_name(f.name) for f in fields if env_name(f.name) not in os.environ]
    if missing:
        workflow.fail(f"inputs not passed to the script (action.yml env:): {', '.join(missing)}")
    values = {
        f.name: _convert(input_name(f.name), os.environ[env_name(f.name)].strip(), hints[f.name])
        for f in fields
    }
    return cls(**values)
