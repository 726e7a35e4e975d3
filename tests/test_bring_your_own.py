"""Bring your own data and model: the generated tests keep passing without being touched.

The demo (loan applications, LogisticRegression) is swapped for a dataset scikit-learn
ships (breast cancer diagnoses: 569 rows, 30 numeric features, no categories and no
sensitive feature) and a gradient-boosting model, editing only what a user edits: a file
under ``data/``, ``data/schema.yaml``, ``params.yaml`` and the framework module.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from sklearn.datasets import load_breast_cancer

from .baking import Project, edit_params, failing_repro, fresh, install
from .test_pipeline import PASSED

pytestmark = pytest.mark.e2e

GRADIENT_BOOSTING = {
    "from sklearn.linear_model import LogisticRegression": (
        "from sklearn.ensemble import GradientBoostingClassifier"
    ),
    "    C: float = Field(gt=0)\n    max_iter: int = Field(gt=0)": (
        "    n_estimators: int = Field(gt=0)\n"
        "    learning_rate: float = Field(gt=0)\n"
        "    max_depth: int = Field(gt=0)"
    ),
    "LogisticRegression(C=params.C, max_iter=params.max_iter, random_state=seed)": (
        "GradientBoostingClassifier(\n"
        "        n_estimators=params.n_estimators,\n"
        "        learning_rate=params.learning_rate,\n"
        "        max_depth=params.max_depth,\n"
        "        random_state=seed,\n"
        "    )"
    ),
}


def replace_each(path: Path, replacements: dict[str, str]) -> None:
    text = path.read_text()
    for old, new in replacements.items():
        assert old in text, f"{path.name} no longer holds {old!r}"
        text = text.replace(old, new)
    path.write_text(text)


def bring_own_data(root: Path) -> None:
    dataset = load_breast_cancer(as_frame=True)
    frame = dataset.frame.rename(columns=lambda name: re.sub(r"\W+", "_", name.strip()))
    (root / "data" / "own").mkdir()
    frame.to_csv(root / "data" / "own" / "breast_cancer.csv", index=False)
    schema = {
        "target": {"name": "target", "classes": [0, 1]},
        "sensitive": [],
        "columns": {
            name: {"type": "number", "min": 0.0} for name in frame.columns if name != "target"
        },
    }
    (root / "data" / "schema.yaml").write_text(yaml.safe_dump(schema, sort_keys=False))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["ingest"]["source"] = "data/own/breast_cancer.csv"
    params["prepare"]["test_size"] = 0.3
    params["train"] = {"n_estimators": 60, "learning_rate": 0.1, "max_depth": 2}
    params["validate"]["thresholds"] = {
        "accuracy": {"min": 0.9},
        "roc_auc": {"min": 0.95},
        "log_loss": {"max": 0.3},
    }
    params["validate"]["fairness"] = None  # no sensitive feature in this data
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_own_data_and_model_pass_the_pipeline_and_the_untouched_tests(
    baked_default: Path, tmp_path: Path
) -> None:
    project: Project = install(fresh(baked_default, tmp_path / "out"), tmp_path / "venv")
    project.run("git", "add", "-A")
    project.run("git", "commit", "-qm", "generated project")
    tests_before = {path.name: path.read_bytes() for path in (project.root / "tests").glob("*.py")}
    bring_own_data(project.root)
    package = next((project.root / "src").iterdir()).name
    replace_each(project.root / "src" / package / "frameworks" / "sklearn.py", GRADIENT_BOOSTING)
    changed = project.run("git", "status", "--porcelain").stdout.split("\n")
    assert sorted(line[3:] for line in changed if line) == [
        "data/own/",
        "data/schema.yaml",
        "params.yaml",
        f"src/{package}/frameworks/sklearn.py",
    ]

    project.dvc("repro")
    verdict = yaml.safe_load((project.root / "reports" / "verdict.json").read_text())
    assert verdict["passed"] is True
    statuses = {gate["name"]: gate["status"] for gate in verdict["gates"]}
    assert statuses == {**PASSED, "fairness": "not_applicable"}  # no sensitive feature
    assert [check["op"] for check in verdict["gates"][0]["checks"]] == [">=", ">=", "<="]
    card = (project.root / "reports" / "model_card.md").read_text()
    assert "Not measured: `data/schema.yaml` declares no sensitive feature." in card
    assert "- Fairness between groups of people was not measured." in card

    assert project.assert_own_tests_pass() > 0
    assert {path.name: path.read_bytes() for path in (project.root / "tests").glob("*.py")} == (
        tests_before
    )

    # Fairness mitigation needs a sensitive feature to mitigate for: this data declares none.
    edit_params(project.root, "train", fairness_mitigation="grid_search")
    result = failing_repro(project)
    assert (
        "params.yaml: train.fairness_mitigation needs a sensitive feature: declare one under "
        "`sensitive` in data/schema.yaml"
    ) in result.stderr
