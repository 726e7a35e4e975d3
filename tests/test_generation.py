"""Every supported option combination bakes the exact expected tree, with meaningful files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from .baking import TEMPLATE, fresh, switch_tuning_on
from .locks import locked
from .matrix import SUPPORTED

GITHUB_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")  # ${{ ... }} in workflows is not Jinja
RUFF = str(Path(sys.executable).parent / "ruff")
STAGES = [
    *("ingest", "prepare", "describe", "tune", "train"),
    *("evaluate", "export", "explain", "validate"),
]
# The generated tree, with PACKAGE standing for the package folder.
EXPECTED_TREE = """
.cruft.json
.dockerignore
.dvc/.gitignore
.dvc/config
.dvcignore
.github/workflows/cd.yml
.github/workflows/ci.yml
.github/workflows/template-update.yml
.github/zizmor.yml
.gitignore
Dockerfile
Makefile
README.md
baseline/.gitignore
baseline/README.md
data/demo/loans.csv
data/schema.yaml
deploy/argocd/production.yaml
deploy/argocd/staging.yaml
deploy/k8s/base/deployment.yaml
deploy/k8s/base/hpa.yaml
deploy/k8s/base/kustomization.yaml
deploy/k8s/base/networkpolicy.yaml
deploy/k8s/base/pdb.yaml
deploy/k8s/base/service.yaml
deploy/k8s/components/triton-gpu/deployment.yaml
deploy/k8s/components/triton-gpu/kustomization.yaml
deploy/k8s/components/triton/deployment.yaml
deploy/k8s/components/triton/kustomization.yaml
deploy/k8s/overlays/production/kustomization.yaml
deploy/k8s/overlays/staging/kustomization.yaml
deploy/ray/raycluster.yaml
dvc.yaml
notebooks/README.md
notebooks/explore.ipynb
params.yaml
pyproject.toml
requirements/dev.lock
requirements/encrypted.lock
requirements/serve.lock
requirements/tune.txt
src/PACKAGE/__init__.py
src/PACKAGE/baseline.py
src/PACKAGE/cli.py
src/PACKAGE/config.py
src/PACKAGE/curves.py
src/PACKAGE/data.py
src/PACKAGE/data_statistics.py
src/PACKAGE/encrypted_client.py
src/PACKAGE/explanation_page.py
src/PACKAGE/explanations.py
src/PACKAGE/files.py
src/PACKAGE/frameworks/__init__.py
src/PACKAGE/frameworks/FRAMEWORK.py
src/PACKAGE/gates.py
src/PACKAGE/lineage.py
src/PACKAGE/metrics.py
src/PACKAGE/model_card.py
src/PACKAGE/model_repository.py
src/PACKAGE/publish.py
src/PACKAGE/report.py
src/PACKAGE/schema.py
src/PACKAGE/serve/__init__.py
src/PACKAGE/serve/__main__.py
src/PACKAGE/serve/app.py
src/PACKAGE/serve/batching.py
src/PACKAGE/serve/bundle.py
src/PACKAGE/serve/encrypted.py
src/PACKAGE/serve/metrics.py
src/PACKAGE/serve/model.py
src/PACKAGE/serve/open_inference.py
src/PACKAGE/serve/openapi.py
src/PACKAGE/serve/settings.py
src/PACKAGE/smoke.py
src/PACKAGE/stages/__init__.py
src/PACKAGE/stages/describe.py
src/PACKAGE/stages/evaluate.py
src/PACKAGE/stages/explain.py
src/PACKAGE/stages/export.py
src/PACKAGE/stages/ingest.py
src/PACKAGE/stages/prepare.py
src/PACKAGE/stages/train.py
src/PACKAGE/stages/tune.py
src/PACKAGE/stages/validate.py
src/PACKAGE/tabular.py
src/PACKAGE/tracking.py
src/PACKAGE/tuning.py
src/PACKAGE/verdict.py
tests/__init__.py
tests/conftest.py
tests/test_batching.py
tests/test_cli.py
tests/test_data.py
tests/test_data_statistics.py
tests/test_dvc_dependencies.py
tests/test_encrypted.py
tests/test_explanations.py
tests/test_model.py
tests/test_model_repository.py
tests/test_open_inference.py
tests/test_serve.py
tests/test_serve_properties.py
tests/test_tuning.py
tests/test_validate.py
"""
# The other tasks' projects have none of the tabular files but their own: an agent has no
# dataset, images have their own data contract and stages, and each task its own tests.
TABULAR_ONLY = """
data/demo/loans.csv data/schema.yaml deploy/ray/raycluster.yaml notebooks/README.md
notebooks/explore.ipynb requirements/tune.txt src/PACKAGE/data.py src/PACKAGE/data_statistics.py
src/PACKAGE/encrypted_client.py src/PACKAGE/explanation_page.py src/PACKAGE/explanations.py
src/PACKAGE/metrics.py src/PACKAGE/model_card.py src/PACKAGE/networks.py src/PACKAGE/tabular.py
src/PACKAGE/tuning.py
src/PACKAGE/stages/describe.py src/PACKAGE/stages/evaluate.py src/PACKAGE/stages/explain.py
src/PACKAGE/stages/export.py src/PACKAGE/stages/ingest.py src/PACKAGE/stages/prepare.py
src/PACKAGE/stages/train.py src/PACKAGE/stages/tune.py src/PACKAGE/stages/validate.py
tests/conftest.py tests/test_batching.py tests/test_cli.py tests/test_data.py
tests/test_data_statistics.py tests/test_encrypted.py tests/test_explanations.py
tests/test_model.py tests/test_model_repository.py tests/test_open_inference.py
tests/test_serve.py tests/test_serve_properties.py tests/test_tuning.py tests/test_validate.py
"""
TASK_ONLY = {
    "tabular": "",
    "image": """
data/schema.yaml src/PACKAGE/images.py src/PACKAGE/metrics.py src/PACKAGE/stages/evaluate_image.py
src/PACKAGE/stages/export_image.py src/PACKAGE/stages/ingest_images.py
src/PACKAGE/stages/prepare_images.py src/PACKAGE/stages/pretrain.py
src/PACKAGE/stages/train_image.py src/PACKAGE/stages/validate_image.py tests/test_images.py
""",
    "reinforcement-learning": """
src/PACKAGE/environment.py src/PACKAGE/stages/evaluate_agent.py
src/PACKAGE/stages/export_agent.py src/PACKAGE/stages/train_agent.py
src/PACKAGE/stages/validate_agent.py tests/test_agent.py
""",
}
STAGES_OF = {
    "tabular": STAGES,
    "image": ["ingest", "prepare", "pretrain", "train", "evaluate", "export", "validate"],
    "reinforcement-learning": ["train", "evaluate", "export", "validate"],
}


def answers(project: Path) -> dict[str, str]:
    return json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]


def files(project: Path) -> list[str]:
    return sorted(
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(project).parts
    )


# Files only some frameworks have, beside their module under frameworks/.
FRAMEWORK_FILES = {
    "sklearn": [
        "src/PACKAGE/mitigation.py",
        "src/PACKAGE/private_training.py",
        "tests/test_private_training.py",
    ],
    "pytorch": [
        "requirements/pytorch.txt",
        "src/PACKAGE/networks.py",
        "src/PACKAGE/onnx_graph.py",
        "src/PACKAGE/frameworks/torch_networks.py",
    ],
    "tensorflow": [
        "requirements/tensorflow.txt",
        "src/PACKAGE/networks.py",
        "src/PACKAGE/onnx_graph.py",
        "src/PACKAGE/frameworks/keras_networks.py",
    ],
    "rllib": ["requirements/rllib.txt"],
}


def test_tree_is_exact(baked: Path) -> None:
    given = answers(baked)
    tree = set(EXPECTED_TREE.split()) | set(FRAMEWORK_FILES.get(given["framework"], []))
    if given["task"] != "tabular":
        tree = tree - set(TABULAR_ONLY.split()) | set(TASK_ONLY[given["task"]].split())
    module = given["framework"] + ("_image" if given["task"] == "image" else "")
    expected = " ".join(sorted(tree)).replace("PACKAGE", given["package"])
    assert files(baked) == sorted(expected.replace("FRAMEWORK", module).split())


def test_no_template_syntax_left(baked: Path) -> None:
    leftovers = [
        name
        for name in files(baked)
        if re.search(
            r"{{|{%|{#|cookiecutter\.", GITHUB_EXPRESSION.sub("", (baked / name).read_text())
        )
    ]
    assert leftovers == []


def test_answers_are_recorded_for_updates(baked: Path, request: pytest.FixtureRequest) -> None:
    cruft = json.loads((baked / ".cruft.json").read_text())
    assert cruft["template"] == str(TEMPLATE)
    recorded = cruft["context"]["cookiecutter"]
    for key, value in SUPPORTED[request.node.callspec.id].items():
        assert recorded[key] == value
    assert not {"_output_dir", "_repo_dir", "_checkout"} & set(recorded)


def test_pyproject_means_what_the_answers_say(baked: Path) -> None:
    given = answers(baked)
    project = tomllib.loads((baked / "pyproject.toml").read_text())["project"]
    tool = tomllib.loads((baked / "pyproject.toml").read_text())["tool"]
    assert project["name"] == given["project"]
    assert project["description"] == given["description"]
    assert project["authors"] == [{"name": given["author_name"], "email": given["author_email"]}]
    assert project["requires-python"] == f">={given['python_version']}"
    assert project["scripts"] == {given["project"]: f"{given['package']}.cli:app"}
    tune = {"tune"} if given["task"] == "tabular" else set()  # Ray Tune searches tabular models
    assert set(project["optional-dependencies"]) == {"serve", "encrypted", "train", "dev", *tune}
    assert tool["ruff"]["target-version"] == "py" + given["python_version"].replace(".", "")


def test_serving_dependencies_exclude_training_libraries(baked: Path) -> None:
    project = tomllib.loads((baked / "pyproject.toml").read_text())["project"]
    serving = project["dependencies"] + project["optional-dependencies"]["serve"]
    names = {Requirement(spec).name for spec in serving}
    assert names.isdisjoint({"scikit-learn", "mlflow", "dvc", "pandas", "torch", "fairlearn"})
    assert "onnxruntime" in names


def test_dvc_pipeline_chains_the_stages(baked: Path) -> None:
    given = answers(baked)
    stages = yaml.safe_load((baked / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((baked / "params.yaml").read_text())
    order = STAGES_OF[given["task"]]
    assert list(stages) == order
    for name, stage in stages.items():
        assert stage["cmd"] == f"{given['project']} {name}"
        for key in stage.get("params", []):  # a section, or section.key
            section, _, name = key.partition(".")
            assert name in params[section] if name else section in params, key
    for index, name in enumerate(order[1:], start=1):
        earlier = {path for stage in order[:index] for path in _outputs(stages[stage])}
        assert earlier & set(stages[name]["deps"]), f"{name} consumes nothing from earlier stages"
    metrics = {next(iter(m)) for m in stages["evaluate"]["metrics"] + stages["export"]["metrics"]}
    tabular = {"metrics/fairness.json", "metrics/encrypted_parity.json"}
    assert metrics == {
        "metrics/metrics.json",
        "metrics/parity.json",
        *(tabular if given["task"] == "tabular" else ()),
    }
    assert params["validate"]["thresholds"], "gates must ship with thresholds"
    for bound in params["validate"]["thresholds"].values():
        assert len(bound) == 1 and set(bound) <= {"min", "max"}, bound


def _outputs(stage: dict) -> set[str]:
    entries = [entry for key in ("outs", "metrics") for entry in stage.get(key, [])]
    return {next(iter(entry)) if isinstance(entry, dict) else entry for entry in entries}


def test_schema_declares_a_sensitive_feature(baked_default: Path) -> None:
    schema = yaml.safe_load((baked_default / "data" / "schema.yaml").read_text())
    assert schema["sensitive"] == ["gender"]
    assert schema["columns"]["gender"]["type"] == "category"


def test_demo_data_is_copied_verbatim(baked_default: Path) -> None:
    shipped = TEMPLATE / "{{cookiecutter.project}}" / "data" / "demo" / "loans.csv"
    assert (baked_default / "data" / "demo" / "loans.csv").read_bytes() == shipped.read_bytes()


def test_project_is_a_git_repository_on_main(baked: Path) -> None:
    branch = subprocess.run(
        ["git", "symbolic-ref", "--short", "HEAD"],
        cwd=baked,
        capture_output=True,
        text=True,
        check=True,
    )
    assert branch.stdout.strip() == "main"


def test_generated_code_is_ruff_clean(baked: Path) -> None:
    check = subprocess.run([RUFF, "check", "."], cwd=baked, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    formatted = subprocess.run(
        [RUFF, "format", "--check", "."], cwd=baked, capture_output=True, text=True
    )
    assert formatted.returncode == 0, formatted.stdout


def test_the_lock_covers_the_project_ranges_and_is_what_the_tests_run(baked: Path) -> None:
    """dev.lock, plus the framework's own pins (requirements/<framework>.txt: torch comes
    from PyTorch's index, so it cannot share the hash-checked lock)."""
    project = tomllib.loads((baked / "pyproject.toml").read_text())["project"]
    dev = locked(baked / "requirements" / "dev.lock")
    extra = {
        name: pin
        for path in (baked / "requirements").glob("*.txt")
        for name, pin in locked(path).items()
    }
    pins = dev | extra
    requirements = [Requirement(spec) for spec in project["dependencies"]]
    for extra_dependencies in project["optional-dependencies"].values():
        requirements += [Requirement(spec) for spec in extra_dependencies]
    outside = [
        f"{req.name} {pins.get(canonicalize_name(req.name))} not in {req.specifier}"
        for req in requirements
        if req.name != project["name"]
        and (req.marker is None or req.marker.evaluate())
        and not req.specifier.contains(pins.get(canonicalize_name(req.name), "0"), prereleases=True)
    ]
    assert outside == []
    # The template's .venv is installed from these pins: the tests run on exactly them (a
    # local build label such as torch's +cpu is the same release).
    differing = {
        name: (pin, installed(name))
        for name, pin in pins.items()
        if not SpecifierSet(f"=={pin}").contains(installed(name) or "0", prereleases=True)
    }
    assert differing == {}


def installed(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def test_the_serving_lock_is_the_dev_locks_serving_part(baked: Path) -> None:
    serve = locked(baked / "requirements" / "serve.lock")
    dev = locked(baked / "requirements" / "dev.lock")
    assert {name: dev.get(name) for name in serve} == serve
    assert "onnxruntime" in serve
    assert serve.keys().isdisjoint(
        {"scikit-learn", "mlflow", "dvc", "pandas", "fairlearn", "typer"}
    )
    for line in (baked / "requirements" / "serve.lock").read_text().splitlines():
        if "==" in line:
            assert line.endswith("\\"), f"{line}: every pin carries its hashes"


def test_the_encrypted_lock_is_the_serving_lock_plus_tenseal(baked: Path) -> None:
    """Installed over serve.lock in the image: it may add TenSEAL and change nothing else."""
    serve = locked(baked / "requirements" / "serve.lock")
    encrypted = locked(baked / "requirements" / "encrypted.lock")
    assert encrypted == {**serve, "tenseal": locked(baked / "requirements" / "dev.lock")["tenseal"]}


def run_project_tests(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The baked project's own pytest, importing its package from ``src/`` (no install)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project / "src")},
        capture_output=True,
        text=True,
    )


DEPENDENCY_TESTS = {
    "tabular": 18,  # 9 closures + 8 data-contract deps + 1 stage order
    "image": 8,  # 7 closures + 1 stage order
    "reinforcement-learning": 5,  # 4 closures + 1 stage order: an agent has no data contract
}


def test_dvc_dependencies_are_the_import_closure(baked: Path) -> None:
    """The project's own check: each stage's code deps equal its module's import closure."""
    result = run_project_tests(baked, "tests/test_dvc_dependencies.py")
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"{DEPENDENCY_TESTS[answers(baked)['task']]} passed" in result.stdout


@pytest.mark.parametrize(
    ("stage", "dependency"),
    [("train", "schema.py"), ("export", "serve/bundle.py"), ("validate", "verdict.py")],
)
def test_the_closure_check_fails_when_dvc_yaml_misses_a_module(
    baked_default: Path, tmp_path: Path, stage: str, dependency: str
) -> None:
    project = fresh(baked_default, tmp_path)
    dvc_yaml = project / "dvc.yaml"
    stages = yaml.safe_load(dvc_yaml.read_text())
    line = f"src/{answers(project)['package']}/{dependency}"
    stages["stages"][stage]["deps"].remove(line)
    dvc_yaml.write_text(yaml.safe_dump(stages, sort_keys=False))
    result = run_project_tests(project, "tests/test_dvc_dependencies.py")
    assert result.returncode == 1
    assert f"dvc.yaml: stage {stage} misses these deps" in result.stdout
    assert f"'{line}'" in result.stdout
    assert f"1 failed, {DEPENDENCY_TESTS['tabular'] - 1} passed" in result.stdout


def test_every_choice_is_baked_by_some_supported_combination() -> None:
    """Choices live in cookiecutter.json only; the matrix must exercise each of them."""
    choices = {
        key: values
        for key, values in json.loads((TEMPLATE / "cookiecutter.json").read_text()).items()
        if isinstance(values, list) and not key.startswith("_")
    }
    for key, values in choices.items():
        baked_values = {combination.get(key, values[0]) for combination in SUPPORTED.values()}
        assert baked_values == set(values), key


def test_readme_documents_every_question() -> None:
    options = (TEMPLATE / "README.md").read_text().split("## Options\n")[1].split("\n## ")[0]
    questions = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    for key, value in questions.items():
        if not key.startswith("_"):
            assert f"`{key}`" in options, key
            for choice in value if isinstance(value, list) else []:
                assert choice in options, f"{key}: {choice}"


def test_make_install_adds_ray_only_when_tuning_is_on(baked_default: Path, tmp_path: Path) -> None:
    project = fresh(baked_default, tmp_path)

    def planned() -> list[str]:
        dry_run = ["make", "-n", "install", f"VENV={tmp_path / 'venv'}"]
        commands = subprocess.run(dry_run, cwd=project, capture_output=True, text=True, check=True)
        return [line for line in commands.stdout.splitlines() if "requirements/tune.txt" in line]

    assert planned() == []
    switch_tuning_on(project)
    assert planned() == [
        f"{tmp_path / 'venv'}/bin/python -m pip install --quiet -r requirements/tune.txt"
    ]
