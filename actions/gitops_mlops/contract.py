"""The project's side of the contract, as the actions read it: ``make lineage``'s JSON.

The actions never read a project's files. They run its ``make`` targets, announcing the
contract version they speak in ``GITOPS_MLOPS_CONTRACT`` (a project that speaks another one
refuses), and parse the document ``make lineage`` writes with :func:`parse`, which refuses a
version they do not speak. Bump :data:`VERSION` with the project's ``CONTRACT_VERSION`` and
store the new schema under the template's ``tests/contracts/``.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import workflow

VERSION = 1
CALLER_VERSION = "GITOPS_MLOPS_CONTRACT"
CALLER_ENV = {CALLER_VERSION: str(VERSION)}


class ContractError(ValueError):
    """The project's document is of another version or does not have the expected shape."""


@dataclass(frozen=True)
class Model:
    """The exported serving bundle."""

    sha256: str
    bundle: str
    bundle_sha256: str
    dvc_md5: str
    framework: str


@dataclass(frozen=True)
class VerdictSummary:
    """What the gates decided about that bundle."""

    passed: bool
    failed: list[str]
    model_sha256: str
    path: str
    report: str


@dataclass(frozen=True)
class Image:
    """How to build and reach the serving image."""

    context: str
    port: int


@dataclass(frozen=True)
class Lineage:
    """``make lineage`` of contract version :data:`VERSION`."""

    contract: int
    git_sha: str
    model: Model
    verdict: VerdictSummary
    metrics: dict[str, float]
    mlflow_run_id: str
    artifacts: list[str]
    image: Image


NESTED = {"model": Model, "verdict": VerdictSummary, "image": Image}


def _fields(cls: type) -> set[str]:
    return {field.name for field in dataclasses.fields(cls)}


def parse(document: dict[str, Any]) -> Lineage:
    """Read a lineage document of exactly this contract version and shape.

    Raises:
        ContractError: naming the version or the fields that differ.
    """
    version = document.get("contract")
    if version != VERSION:
        newer = isinstance(version, int) and version > VERSION
        raise ContractError(
            f"the project speaks contract version {version!r}, these actions speak {VERSION}: "
            + (
                "use a newer release of the actions (actions_ref)"
                if newer
                else "bring the project up to date with `cruft update`"
            )
        )
    problems = []
    for name, cls in [("lineage", Lineage), *NESTED.items()]:
        given = document if name == "lineage" else document.get(name)
        if not isinstance(given, dict):
            problems.append(f"{name} is missing")
            continue
        if missing := sorted(_fields(cls) - set(given)):
            problems.append(f"{name} lacks {', '.join(missing)}")
        if extra := sorted(set(given) - _fields(cls)):
            problems.append(f"{name} has unknown {', '.join(extra)}")
    if problems:
        raise ContractError(
            f"lineage of contract version {VERSION} malformed: {'; '.join(problems)}"
        )
    return Lineage(**{**document, **{name: cls(**document[name]) for name, cls in NESTED.items()}})


def describe(cwd: Path | None = None) -> Lineage:
    """Ask the project for its lineage (``make lineage``); fail the step when it cannot say."""
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "lineage.json"
        status = workflow.run(["make", "lineage", f"OUT={output}"], cwd=cwd, env=CALLER_ENV)
        if status != 0 or not output.is_file():
            workflow.fail(
                "`make lineage` failed: the project has no validated model yet, or it predates "
                f"contract version {VERSION} (bring it up to date with `cruft update`)"
            )
        document = json.loads(output.read_text(encoding="utf-8"))
    try:
        return parse(document)
    except ContractError as error:
        workflow.fail(str(error))
