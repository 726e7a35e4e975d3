"""Bake projects from this template and give each one an environment to run in.

Every baked project gets a tiny virtualenv whose site-packages links to this test run's
environment (a ``.pth`` file), so the heavy dependencies are installed once, while the
project itself is installed editable with its real console script.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import yaml
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
# How many tests the default project's own suite holds (its demo schema generates them all).
DEFAULT_PROJECT_TESTS = 212
SKLEARN_ONLY_TESTS = 7  # of them: tests/test_private_training.py


def load_action_script(action: str, script: str) -> ModuleType:
    """Import ``actions/<action>/<script>.py`` (the folders have hyphens, so not as a package).

    Its shared code, ``gitops_mlops``, is importable because pytest puts ``actions/`` on the
    path (pyproject.toml), as ``action.yml`` does with ``PYTHONPATH``.
    """
    path = TEMPLATE / "actions" / action / f"{script}.py"
    spec = importlib.util.spec_from_file_location(script, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[script] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def action_env(action: str, **given: str) -> dict[str, str]:
    """``INPUT_*`` variables as a runner sets them for ``action``: every input declared in its
    ``action.yml``, at its default (expressions such as ``${{ github.token }}`` read as empty)
    unless ``given`` (keyword names use ``_`` for ``-``)."""
    declared = yaml.safe_load((TEMPLATE / "actions" / action / "action.yml").read_text())["inputs"]
    values = {
        name: "" if "${{" in str(spec.get("default", "")) else str(spec.get("default", ""))
        for name, spec in declared.items()
    }
    unknown = {name.replace("_", "-") for name in given} - set(values)
    assert not unknown, f"{action} declares no input {unknown}"
    values |= {name.replace("_", "-"): value for name, value in given.items()}
    return {f"INPUT_{name.upper().replace('-', '_')}": value for name, value in values.items()}


def fresh(baked: Path, destination: Path) -> Path:
    """A private copy of a session bake (git repository included), for a test to change."""
    target = destination / baked.name
    shutil.copytree(baked, target, symlinks=True)
    return target


Rows = list[dict[str, str]]
# The labels carry the injected bias, so accuracy against them falls too: these thresholds
# leave the fairness gate as the one that decides.
BIASED_LABEL_THRESHOLDS = {
    "accuracy": {"min": 0.75},
    "roc_auc": {"min": 0.85},
    "log_loss": {"max": 0.5},
}


def edit_csv(path: Path, change: Callable[[Rows], Rows]) -> None:
    """Rewrite a CSV file's rows through ``change``."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows = change(rows)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def deny_half_the_women(rows: Rows) -> Rows:
    """The demo data with every other woman's application denied: injected bias."""
    return [
        {**row, "approved": "0"} if row["gender"] == "female" and index % 2 == 0 else row
        for index, row in enumerate(rows)
    ]


def edit_params(root: Path, section: str, **values: object) -> None:
    """Set ``values`` in one section of the baked project's ``params.yaml``."""
    params_file = root / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params[section] |= values
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))


def switch_tuning_on(root: Path, **settings: object) -> None:
    """Turn the baked project's tune stage on, with ``settings`` over its ``tune`` section."""
    edit_params(root, "tune", enabled=True, **settings)


def bake(output_dir: Path, **answers: str) -> Path:
    """Generate a project with ``answers`` over the defaults; return its folder."""
    return Path(
        cookiecutter(
            str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(output_dir)
        )
    )


@dataclass(frozen=True)
class Project:
    """A baked project and the environment its commands run in."""

    root: Path
    env: dict[str, str]

    @property
    def package(self) -> str:
        """The project's import name, from its answers."""
        answers = json.loads((self.root / ".cruft.json").read_text())
        return answers["context"]["cookiecutter"]["package"]

    @property
    def python(self) -> str:
        return str(Path(self.env["VIRTUAL_ENV"]) / "bin" / "python")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command in the project folder; ``check`` shows its output when it fails."""
        result = subprocess.run(
            args, cwd=self.root, env=self.env, capture_output=True, text=True, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    def assert_own_tests_pass(self) -> int:
        """Run the project's pytest; every collected test must pass. Returns how many ran."""
        pytest = [self.python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        collected = self.run(*pytest, "--collect-only").stdout
        count = int(re.search(r"(\d+) tests? collected", collected).group(1))
        summary = self.run(*pytest).stdout.strip().splitlines()[-1]
        assert summary.startswith(f"{count} passed in "), summary
        return count

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(self.python, "-m", "dvc", *args, check=check)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(
            str(Path(self.env["VIRTUAL_ENV"]) / "bin" / self.root.name), *args, check=check
        )


def failing_repro(project: Project) -> subprocess.CompletedProcess[str]:
    """``dvc repro`` that must fail, and cleanly: a non-zero exit, no traceback."""
    result = project.dvc("repro", check=False)
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    return result


def install(root: Path, venv: Path) -> Project:
    """Create ``venv`` linked to this environment and install the project into it, editable."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = venv / "lib" / version / "site-packages"
    (site / "_template_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    search_path = [str(venv / "bin"), str(Path(sys.executable).parent), os.environ["PATH"]]
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")},
        "VIRTUAL_ENV": str(venv),
        "VENV": str(venv),  # the project's Makefile runs in this virtualenv
        "PATH": os.pathsep.join(search_path),
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    project = Project(root=root, env=env)
    project.run(
        project.python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--disable-pip-version-check",
        "-e",
        str(root),
    )
    (venv / ".installed").touch()  # the project's `make install` has nothing left to do
    return project
