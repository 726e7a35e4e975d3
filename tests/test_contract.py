"""The versioned contract between generated projects and the composite actions.

A project answers (``make lineage``); the actions read only that. Both sides are checked
against the stored schema of their contract version (``contracts/lineage-v<N>.schema.json``),
so changing a field on either side without bumping the version (and storing the new
schema) fails here, and a project and actions of different versions refuse each other loudly.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gitops_mlops import contract

from .baking import TEMPLATE, Project

pytestmark = pytest.mark.e2e
CONTRACTS = TEMPLATE / "tests" / "contracts"
OLD_PROJECT = TEMPLATE / "tests" / "fixtures" / "contract-v0-project"


def schema(version: int) -> dict[str, Any]:
    return json.loads((CONTRACTS / f"lineage-v{version}.schema.json").read_text())


def example(version: int) -> dict[str, Any]:
    return json.loads((CONTRACTS / f"lineage-v{version}.example.json").read_text())


def lineage(project: Project, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "lineage", *args],
        cwd=project.root,
        env={**project.env, **env},
        capture_output=True,
        text=True,
    )


def test_the_project_speaks_the_stored_schema_of_its_version(reproduced: Project) -> None:
    result = lineage(reproduced)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, schema(document["contract"]))
    assert document["contract"] == contract.VERSION
    head = reproduced.run("git", "rev-parse", "HEAD").stdout.strip()
    assert document["git_sha"] == head
    assert document["verdict"]["model_sha256"] == document["model"]["sha256"]
    assert document["verdict"]["passed"] is True
    assert contract.parse(document).model.sha256 == document["model"]["sha256"]


def field_names(cls: type) -> dict[str, Any]:
    """Field names, nested dataclasses as dictionaries of theirs."""
    nested = contract.NESTED if cls is contract.Lineage else {}
    return {
        field.name: field_names(nested[field.name]) if field.name in nested else None
        for field in dataclasses.fields(cls)
    }


def schema_names(node: dict[str, Any]) -> dict[str, Any]:
    return {
        name: schema_names(spec) if spec.get("type") == "object" and "properties" in spec else None
        for name, spec in node["properties"].items()
    }


def test_the_actions_read_exactly_the_stored_schema_of_their_version() -> None:
    assert field_names(contract.Lineage) == schema_names(schema(contract.VERSION))
    stored = example(contract.VERSION)
    jsonschema.validate(stored, schema(contract.VERSION))
    assert contract.parse(stored).verdict.passed is True


@pytest.mark.parametrize(
    ("version", "advice"),
    [(0, "bring the project up to date with `cruft update`"), (2, "use a newer release")],
)
def test_the_actions_refuse_another_version(version: int, advice: str) -> None:
    with pytest.raises(contract.ContractError, match=advice):
        contract.parse({**example(contract.VERSION), "contract": version})


def test_the_actions_refuse_a_changed_shape_of_their_version() -> None:
    document = example(contract.VERSION)
    model = document["model"]
    model["onnx_sha256"] = model.pop("sha256")
    with pytest.raises(contract.ContractError, match="model lacks sha256; model has unknown"):
        contract.parse(document)


def test_the_project_refuses_actions_of_another_version(reproduced: Project) -> None:
    result = lineage(reproduced, GITOPS_MLOPS_CONTRACT=str(contract.VERSION + 1))
    assert result.returncode != 0
    assert f"the calling actions speak contract version {contract.VERSION + 1}" in result.stderr


def test_new_actions_refuse_a_project_from_before_the_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stored fixture stands for a project baked before contract version 1 existed: its
    Makefile has the targets the previous actions called (model, validate) but no lineage."""
    with pytest.raises(SystemExit) as stopped:
        contract.describe(OLD_PROJECT)
    assert stopped.value.code == 1
    out = capsys.readouterr().out
    assert "No rule to make target 'lineage'" in out or "predates contract version 1" in out
    assert "::error::`make lineage` failed" in out
    assert "bring it up to date with `cruft update`" in out


def test_previous_actions_fail_loudly_on_a_new_project(reproduced: Project) -> None:
    """Actions before the contract ran `make model`; a new project has no such target."""
    result = subprocess.run(
        ["make", "model"], cwd=reproduced.root, env=reproduced.env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "No rule to make target 'model'" in result.stderr
