"""The verdict of the gates: what ``validate`` decided, as versioned JSON with one parser.

``reports/verdict.json`` is read by people (through the report), by ``summary`` and by
``lineage`` (which CI/CD consumes). Bump :data:`SCHEMA_VERSION` whenever a field changes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 1

Status = Literal["passed", "failed", "skipped", "not_applicable"]
Op = Literal[">=", "<="]


@dataclass(frozen=True)
class Check:
    """One comparison: ``value op bound``."""

    name: str
    value: float | None
    op: Op
    bound: float
    passed: bool


@dataclass(frozen=True)
class Gate:
    """A named group of checks with a one-line explanation."""

    name: str
    status: Status
    detail: str
    checks: list[Check] = field(default_factory=list)

    def failure(self) -> str:
        """``name (failing checks or detail)``, for one-line messages."""
        failing = ", ".join(check.name for check in self.checks if not check.passed)
        return f"{self.name} ({failing or self.detail})"


@dataclass(frozen=True)
class Baseline:
    """What the new model was compared with, and whether on the same test split."""

    source: str  # "model" (scored on this test split), "metrics" (committed numbers) or "none"
    ref: str | None = None
    commit: str | None = None
    metrics: dict[str, float] | None = None
    test_split_md5: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Verdict:
    """Everything the report needs: gates, metrics, the model judged and its baseline."""

    passed: bool
    gates: list[Gate]
    metrics: dict[str, float]
    model_sha256: str
    test_split_md5: str
    baseline: Baseline
    schema_version: int = SCHEMA_VERSION

    @property
    def failed(self) -> list[Gate]:
        """The gates that failed."""
        return [gate for gate in self.gates if gate.status == "failed"]

    def to_json(self) -> dict[str, Any]:
        """Plain-data form for ``reports/verdict.json``."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        """Parse ``reports/verdict.json``; refuse a schema version this code does not know.

        Raises:
            ValueError: for another schema version.
        """
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"verdict schema version {version!r} is not {SCHEMA_VERSION}: re-run validate"
            )
        gates = [
            Gate(**{**gate, "checks": [Check(**check) for check in gate["checks"]]})
            for gate in data["gates"]
        ]
        return cls(**{**data, "gates": gates, "baseline": Baseline(**data["baseline"])})
