{%- if cookiecutter.task == "reinforcement-learning" -%}
"""How the agent is learned: RLlib (:mod:`.rllib`), the one framework of this task.

Nothing here imports a training library.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
{%- elif cookiecutter.task == "image" -%}
"""How the image classifier is learned: the framework chosen when the project was generated.

Every framework module satisfies :class:`Framework`, so stages never name a framework.
Nothing here imports a training library until a stage calls :func:`load`.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from pydantic import BaseModel

if TYPE_CHECKING:
    import numpy as np

    from ..images import Images
    from ..schema import Schema


# Called with one epoch's metrics, as :meth:`Framework.curves` lists them.
Progress = Callable[[dict[str, float]], None]


class Framework(Protocol):
    """What the image stages need from a framework module."""

    NAME: str
    BACKBONE_FILE: str  # the checkpoint save_backbone writes
    PretrainParams: type[BaseModel]  # params.yaml: pretrain.train
    Params: type[BaseModel]  # params.yaml: train (its backbone and from_scratch keys)

    def pretrain(self, images: Images, schema: Schema, params: Any, seed: int) -> Any:
        """Train a backbone on ``images``' classes; the same inputs give the same backbone."""

    def fit(
        self,
        images: Images,
        schema: Schema,
        params: Any,
        backbone: Any,
        seed: int,
        progress: Progress | None = None,
    ) -> Any:
        """Fine-tune a new head on ``backbone`` (modified in place when blocks are unfrozen).

        With ``params.from_scratch`` the backbone's architecture is trained whole from random
        weights instead.
        """

    def predict_proba(self, model: Any, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities, columns ordered like ``schema.target.classes``."""

    def curves(self, model: Any) -> list[dict[str, float]]:
        """Metrics per epoch of fine-tuning."""

    def trainable(self, model: Any) -> list[str]:
        """The names of the weights fine-tuning trained."""

    def backbone_state(self, backbone: Any) -> dict[str, np.ndarray]:
        """Every weight (and normalization statistic) of the backbone, by name."""

    def save_backbone(self, backbone: Any, folder: Path) -> None:
        """Persist the backbone into an empty folder."""

    def load_backbone(self, path: Path) -> Any:
        """A backbone written by :meth:`save_backbone`: its folder or its checkpoint file."""

    def save(self, model: Any, folder: Path) -> None:
        """Persist the classifier into an empty folder."""

    def load(self, folder: Path) -> Any:
        """Load a classifier written by :meth:`save`."""

    def to_onnx(self, model: Any, schema: Schema) -> bytes:
        """Serialize: the image input ``[rows, height, width, channels]``; label, probabilities."""


def load() -> Framework:
    """The framework module this project trains with."""
    from . import {{ cookiecutter.framework }}_image as chosen

    return cast(Framework, chosen)
{%- else -%}
"""How the model is learned: the framework chosen when the project was generated.

Every framework module satisfies :class:`Framework`, so stages never name a framework.
Nothing here imports a training library until a stage calls :func:`load`.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from pydantic import BaseModel

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ..schema import Schema


# Called with one epoch's metrics, as :meth:`Framework.curves` lists them.
Progress = Callable[[dict[str, float]], None]


class Framework(Protocol):
    """What the stages need from a framework module."""

    NAME: str
    Params: type[BaseModel]  # the ``train`` section of params.yaml

    def fit(
        self,
        features: pd.DataFrame,
        target: pd.Series,
        schema: Schema,
        params: Any,
        seed: int,
        progress: Progress | None = None,
    ) -> Any:
        """Train on the features; the same data, params and seed give the same model.

        Frameworks that train in epochs call ``progress`` after each one with that epoch's
        entry of :meth:`curves` (Tune's early stopping listens); the others never call it.
        """

    def predict_proba(self, model: Any, features: pd.DataFrame) -> np.ndarray:
        """Class probabilities, columns ordered like ``schema.target.classes``."""

    def unmitigated(self, model: Any) -> Any | None:
        """The model before fairness mitigation; None when none was applied."""

    def curves(self, model: Any) -> list[dict[str, float]]:
        """Metrics per epoch of training (empty for models not trained in epochs)."""

    def linear(self, model: Any, schema: Schema) -> tuple[np.ndarray, np.ndarray] | None:
        """Weights (outputs x inputs) and bias over the encrypted endpoint's inputs.

        None for a model that is not linear: encrypted inference does not apply to it.
        """

    def save(self, model: Any, folder: Path) -> None:
        """Persist the native model into an empty folder."""

    def load(self, folder: Path) -> Any:
        """Load a model written by :meth:`save`."""

    def to_onnx(self, model: Any, schema: Schema) -> bytes:
        """Serialize to ONNX: one ``[N, 1]`` input per feature; outputs label, probabilities."""


def load() -> Framework:
    """The framework module this project trains with."""
    from . import {{ cookiecutter.framework }} as chosen

    return cast(Framework, chosen)
{%- endif %}


@contextlib.contextmanager
def quiet(*loggers: str) -> Iterator[None]:
    """Keep a converter's chatter out of the stage's log.

    Exporters log their progress at INFO, warn about optional operators a model never uses
    (torch.onnx: torchvision's) and trip deprecation warnings inside their own library.
    """
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
