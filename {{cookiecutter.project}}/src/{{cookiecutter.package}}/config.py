"""``params.yaml`` as typed data, and the files the stages exchange.

No framework is imported here: the ``train`` section stays plain data and is validated by the
chosen framework's ``Params`` model when ``train`` runs, so loading the configuration (and
``<cli> --help``) never pulls in a training library. Unknown keys are errors
(``extra="forbid"``): a typo in ``params.yaml`` must not silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)
from typing_extensions import Self

from .files import atomic_path

Model = TypeVar("Model", bound=BaseModel)

# The installed distribution: its metadata and dependencies.
PROJECT = "{{ cookiecutter.project }}"


class StageError(RuntimeError):
    """A stage cannot go on; the message says what is wrong and where, in one line or a list."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngestParams(_Strict):
    """Where the raw data comes from."""

    source: Path


class PrepareParams(_Strict):
    """How the validated data is split."""

    test_size: float = Field(gt=0, lt=1)


class Distribution(_Strict):
    """Where ``tune`` samples one hyper-parameter: exactly one of these keys.

    ``uniform`` and ``loguniform`` take ``[low, high]``; ``randint`` takes ``[low, high)``
    (integers, high excluded, as Ray does); ``choice`` takes the values to pick from.
    """

    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    randint: tuple[int, int] | None = None
    choice: list[Any] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _sampleable(self) -> Distribution:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of uniform, loguniform, randint or choice")
        if self.kind != "choice":
            low, high = self.values
            if not low < high:
                raise ValueError(f"{self.kind}: the low bound {low} must be below the high {high}")
            if self.kind == "loguniform" and low <= 0:
                raise ValueError(f"loguniform: the bounds must be positive, not {low}")
        return self

    @property
    def kind(self) -> str:
        """``uniform``, ``loguniform``, ``randint`` or ``choice``."""
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)

    @property
    def values(self) -> list[Any]:
        """The bounds, or the choices."""
        return list(getattr(self, self.kind))


class TuneParams(_Strict):
    """Whether and how ``tune`` searches the ``train`` section with Ray Tune."""

    enabled: bool = False
    trials: PositiveInt = 8
    # Scored on a stratified validation share of the training split (the test split stays
    # unseen until evaluate); log_loss is minimized, every other metric maximized.
    metric: Literal["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"] = "roc_auc"
    validation_fraction: float = Field(default=0.2, gt=0, lt=0.5)
    concurrency: PositiveInt = 2  # trials at once, one CPU each
    # asha stops unpromising trials between epochs (on the validation loss; networks only).
    scheduler: Literal["fifo", "asha"] = "fifo"
    grace_period: PositiveInt = 5  # asha: epochs every trial trains before it may be stopped
    # A Ray cluster (ray://<head>:10001); null: RAY_ADDRESS if set, else a local Ray.
    address: str | None = None
    space: dict[str, Distribution] = {}

    @model_validator(mode="after")
    def _something_to_search(self) -> TuneParams:
        if self.enabled and not self.space:
            raise ValueError("enabled with an empty space: name the train parameters to search")
        return self


class ExplainParams(_Strict):
    """How ``explain`` probes the served model (see ``explanations.py``)."""

    rows: PositiveInt = 1000  # test rows sampled as the background; all when there are fewer
    trajectories: PositiveInt = 1000  # Morris: the model sees trajectories x (features + 1) rows
    levels: int = Field(default=4, ge=2)  # Morris: grid levels per feature range (even)
    grid_points: int = Field(default=10, ge=2)  # partial dependence: percentiles of a number
    top: PositiveInt = 5  # features listed in the report and the model card

    @field_validator("levels")
    @classmethod
    def _even(cls, levels: int) -> int:
        if levels % 2:
            raise ValueError(f"must be even (Morris' steps need it), got {levels}")
        return levels


class PrivacyBudget(_Strict):
    """The most privacy loss the pipeline may spend on the training data, (epsilon, delta)-DP."""

    epsilon: float = Field(gt=0)
    delta: float = Field(default=0.0, ge=0, lt=1)


class PrivacyParams(_Strict):
    """``params.yaml: privacy``: differential privacy for the training data."""

    enabled: bool = False
    # None with privacy on fails the privacy gate: a release needs a declared budget.
    budget: PrivacyBudget | None = None
    statistics_epsilon: float = Field(default=0.5, gt=0)  # the report's data statistics
    histogram_bins: int = Field(default=10, ge=2, le=50)  # per numeric feature


class EncryptionParams(_Strict):
    """``params.yaml: encryption``: the encrypted endpoint (CKKS, linear models only)."""

    enabled: bool = False
    poly_modulus_degree: Literal[4096, 8192, 16384] = 8192  # rows per request: half of it
    coeff_mod_bit_sizes: list[int] = Field(default=[60, 30, 30, 30, 60], min_length=3)
    scale_bits: int = Field(default=30, ge=20, le=50)  # precision of the encrypted values

    @model_validator(mode="after")
    def _secure(self) -> EncryptionParams:
        # SEAL's bound for 128-bit security: more modulus bits per degree would be insecure.
        most = {4096: 109, 8192: 218, 16384: 438}[self.poly_modulus_degree]
        if sum(self.coeff_mod_bit_sizes) > most:
            raise ValueError(
                f"coeff_mod_bit_sizes add up to {sum(self.coeff_mod_bit_sizes)} bits; "
                f"poly_modulus_degree {self.poly_modulus_degree} allows {most} for 128-bit security"
            )
        return self


class ParamsFile(_Strict):
    """A whole ``params.yaml``, read and checked in one place for every task."""

    @classmethod
    def load(cls, path: Path = Path("params.yaml")) -> Self:
        """Read and check ``params.yaml``.

        Raises:
            StageError: naming each offending key.
        """
        return validated(cls, yaml.safe_load(path.read_text(encoding="utf-8")), path.name)


class LoopParams(_Strict):
    """How a network trains, in every framework: the loop's part of a ``train`` section."""

    learning_rate: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    batch_size: PositiveInt
    max_epochs: PositiveInt
    patience: PositiveInt  # epochs without a better validation loss before training stops
    validation_fraction: float = Field(gt=0, lt=0.5)


class Bound(_Strict):
    """A threshold with its direction: ``{min: 0.85}`` for a score, ``{max: 0.4}`` for a loss."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_direction(self) -> Bound:
        if (self.min is None) == (self.max is None):
            raise ValueError("give exactly one of min or max")
        return self


class FairnessBound(_Strict):
    """Largest allowed between-group difference of a Fairlearn metric."""

    metric: Literal["demographic_parity_difference", "equalized_odds_difference"]
    max: float = Field(ge=0, le=1)


class ParityBound(_Strict):
    """How closely the ONNX model must reproduce the native model."""

    max_abs_diff: float = Field(ge=0)
    min_label_agreement: float = Field(ge=0, le=1)


class EncryptedParityBound(_Strict):
    """How closely encrypted predictions must match plaintext ones on the test split."""

    max_abs_logit_error: float = Field(default=0.01, ge=0)
    min_label_agreement: float = Field(default=1.0, ge=0, le=1)


class ValidateParams(_Strict):
    """The gates a model must pass before it may ship."""

    thresholds: dict[str, Bound] = {}
    max_regression: float = Field(ge=0)
    # None switches the fairness gate off explicitly; the verdict then says "not applicable".
    fairness: FairnessBound | None
    parity: ParityBound
    encrypted_parity: EncryptedParityBound = EncryptedParityBound()


class Params(ParamsFile):
    """All of ``params.yaml``; ``train`` is validated by the framework (see module docstring)."""

    seed: int
    ingest: IngestParams
    prepare: PrepareParams
    train: dict[str, Any]
    tune: TuneParams = TuneParams()  # off unless params.yaml switches it on
    explain: ExplainParams = ExplainParams()
    privacy: PrivacyParams = PrivacyParams()  # off: the report's statistics are exact
    encryption: EncryptionParams = EncryptionParams()  # off: no encrypted endpoint
    validate_: ValidateParams = Field(alias="validate")


def validated(model: type[Model], data: object, where: str) -> Model:
    """``model.model_validate(data)``, with errors as a :class:`StageError` naming each key."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = [
            f"{where}: {'.'.join(map(str, item['loc'])) or '(top level)'}: {item['msg']}"
            for item in error.errors(include_url=False)
        ]
        raise StageError("\n".join(problems)) from None


class Tuned(_Strict):
    """What ``tune`` found (``models/tuned.yaml``); ``train`` applies ``best`` over its section."""

    enabled: bool
    metric: str | None = None
    score: float | None = None  # of the best trial, on the validation share
    trials: int = 0
    stopped_early: int = 0
    best: dict[str, Any] = {}

    @classmethod
    def load(cls, path: Path) -> Tuned:
        """Read the file ``tune`` wrote."""
        return validated(cls, yaml.safe_load(path.read_text(encoding="utf-8")), str(path))

    def over(self, train: dict[str, Any]) -> dict[str, Any]:
        """The ``train`` section with the best values found applied over it."""
        return {**train, **self.best}

    def write(self, path: Path) -> None:
        """Write atomically, with a header saying where it comes from."""
        header = "# Written by `tune` (params.yaml: tune); `train` applies `best` over `train`.\n"
        with atomic_path(path) as temporary:
            body = yaml.safe_dump(self.model_dump(exclude_none=True), sort_keys=True)
            temporary.write_text(header + body, encoding="utf-8")


@dataclasses.dataclass(frozen=True)
class Paths:
    """Files the stages exchange, relative to the project root (where DVC runs them).

    ``Paths.at(root)`` roots every path elsewhere, for tests and tools.
    """

    root: Path = Path()
    params: Path = Path("params.yaml")
    schema: Path = Path("data/schema.yaml")
{%- if cookiecutter.task == "image" %}
    raw: Path = Path("data/raw/images")  # one folder of images per class
    train: Path = Path("data/prepared/train.npz")
    test: Path = Path("data/prepared/test.npz")
    backbone: Path = Path("models/backbone")  # pretrain's, for train to fine-tune
{%- else %}
    raw: Path = Path("data/raw/dataset.csv")
    train: Path = Path("data/prepared/train.csv")
    test: Path = Path("data/prepared/test.csv")
{%- endif %}
    tuned: Path = Path("models/tuned.yaml")  # the best train parameters tune found
    model: Path = Path("models/native")
    logs: Path = Path("logs")
    bundle: Path = Path("models/serving")
    model_repository: Path = Path("models/triton")  # the same model for NVIDIA Triton
    metrics: Path = Path("metrics/metrics.json")
    fairness: Path = Path("metrics/fairness.json")
    parity: Path = Path("metrics/parity.json")
    encrypted_parity: Path = Path("metrics/encrypted_parity.json")
    confusion: Path = Path("plots/confusion.csv")
    roc: Path = Path("plots/roc.csv")
    baseline: Path = Path("baseline")
    verdict: Path = Path("reports/verdict.json")
    report: Path = Path("reports/report.md")
    model_card: Path = Path("reports/model_card.md")
    statistics: Path = Path("reports/statistics.json")  # of the training split
    explanations: Path = Path("reports/explanations.json")
    explanations_page: Path = Path("reports/explanations.html")
    mlflow: Path = Path("mlflow")
    dvc_lock: Path = Path("dvc.lock")

    def at(self, root: Path) -> Paths:
        """The same layout under ``root``."""
        return Paths(**{f.name: root / getattr(self, f.name) for f in dataclasses.fields(self)})

    @property
    def mlflow_run(self) -> Path:
        """The id of the MLflow run that ``train`` started and later stages continue."""
        return self.mlflow / "last_run_id"

    @property
    def artifacts(self) -> tuple[Path, ...]:
        """What CI keeps of a run: the bundle, metrics, plots, reports and TensorBoard logs."""
        return (
            self.bundle,
            self.metrics.parent,
            self.confusion.parent,
            self.verdict.parent,
            self.logs,
        )
