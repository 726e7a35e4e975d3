"""``dvc.yaml`` lists exactly the code each stage runs, so ``dvc repro`` never serves a stale model.

A stage's code dependencies must be its module under ``stages/`` plus every project module it
imports, directly or not (package ``__init__`` files included, imports inside functions too),
and nothing else.{% if cookiecutter.task == "tabular" %} Every stage after ``ingest`` must depend on the data contract.{% endif %}
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package }}.cli import STAGES

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = "{{ cookiecutter.package }}"
SOURCE = PROJECT / "src"
{%- if cookiecutter.task == "tabular" %}
CONTRACT = "data/schema.yaml"
{%- endif %}


def module_file(dotted: str) -> Path | None:
    """The file that defines module ``dotted`` (a package's ``__init__.py``), if in the project."""
    base = SOURCE.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(dotted: str, path: Path) -> set[str]:
    """Project modules that ``path`` (module ``dotted``) imports anywhere in its body."""
    package = dotted if path.name == "__init__.py" else dotted.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            anchor = package.rsplit(".", node.level - 1)[0] if node.level else ""
            base = ".".join(part for part in (anchor, node.module or "") if part)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from . import module`
    return {name for name in found if name.split(".")[0] == PACKAGE and module_file(name)}


def closure(dotted: str) -> set[str]:
    """Project files that importing ``dotted`` executes, relative to the project root."""
    seen: set[str] = set()
    pending = [dotted]
    while pending:
        name = pending.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            parent = ".".join(parts[:depth])
            if parent in seen:
                continue
            seen.add(parent)
            path = module_file(parent)
            pending += sorted(imported_modules(parent, path))
    return {module_file(name).relative_to(PROJECT).as_posix() for name in seen}


def stage_dependencies() -> dict[str, set[str]]:
    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return {name: set(stage["deps"]) for name, stage in stages.items()}


@pytest.mark.parametrize("stage", STAGES)
def test_stage_code_dependencies_are_its_import_closure(stage: str) -> None:
    declared = {dep for dep in stage_dependencies()[stage] if dep.startswith("src/")}
    module, _ = STAGES[stage]
    expected = closure(f"{PACKAGE}.stages.{module}")
    assert sorted(expected - declared) == [], f"dvc.yaml: stage {stage} misses these deps"
    assert sorted(declared - expected) == [], f"dvc.yaml: stage {stage} lists unused code"


{%- if cookiecutter.task == "tabular" %}


@pytest.mark.parametrize("stage", [name for name in STAGES if name != "ingest"])
def test_stages_after_ingest_depend_on_the_data_contract(stage: str) -> None:
    assert CONTRACT in stage_dependencies()[stage]
{%- endif %}


def test_dvc_runs_every_stage_of_the_cli_in_order() -> None:
    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert list(stages) == list(STAGES)
