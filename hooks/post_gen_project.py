"""Shape the freshly generated project: prune unused options, record the answers, init git.

Runs inside the generated project folder. No network access and nothing that cannot be undone
by deleting the folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

# Answers that describe where cookiecutter ran, not the project: they would leak local paths.
RUN_LOCAL_KEYS = ("_output_dir", "_repo_dir", "_checkout")


# Modules of the frameworks that train neural networks: the ONNX graph helpers every one
# uses, the tabular networks' shared code, and what PyTorch's and Keras's networks share.
FRAMEWORK_FILES = {
    "src/{package}/onnx_graph.py": ("pytorch", "tensorflow"),
    "src/{package}/networks.py": ("pytorch", "tensorflow"),
    "src/{package}/frameworks/torch_networks.py": ("pytorch",),
    "src/{package}/frameworks/keras_networks.py": ("tensorflow",),
    "src/{package}/mitigation.py": ("sklearn",),  # Fairlearn mitigation
    "src/{package}/private_training.py": ("sklearn",),
    "tests/test_private_training.py": ("sklearn",),
}
# Extra requirements every tabular project keeps, whatever its framework: Ray for tune.
SHARED_EXTRAS = ("tune",)


def stages(*names: str) -> tuple[str, ...]:
    """The modules of these stages."""
    return tuple("src/{package}/stages/" + name + ".py" for name in names)


def modules(*names: str) -> tuple[str, ...]:
    """These modules of the package."""
    return tuple("src/{package}/" + name + ".py" for name in names)


def tests(*names: str) -> tuple[str, ...]:
    """These modules of the generated tests."""
    return tuple(f"tests/{name}.py" for name in names)


# The files of each task; a project keeps its task's and those no task claims. Tabular and
# image classification share their metrics; an agent learns in an environment and has no
# dataset. Each task's stages and tests are its own.
TASK_FILES = {
    "tabular": (
        "data/demo", "data/schema.yaml", "deploy/ray", "notebooks", "requirements/tune.txt",
        *modules(
            "data", "data_statistics", "encrypted_client", "explanation_page", "explanations",
            "metrics", "model_card", "networks", "tabular", "tuning",
        ),
        *stages(
            "ingest", "prepare", "describe", "tune", "train", "evaluate", "export", "explain",
            "validate",
        ),
        *tests(
            "conftest", "test_batching", "test_cli", "test_data", "test_data_statistics",
            "test_encrypted", "test_explanations", "test_model", "test_model_repository",
            "test_open_inference", "test_serve", "test_serve_properties", "test_tuning",
            "test_validate",
        ),
    ),
    "image": (
        "data/schema.yaml",
        *modules("images", "metrics"),
        *stages(
            "ingest_images", "prepare_images", "pretrain", "train_image", "evaluate_image",
            "export_image", "validate_image",
        ),
        *tests("test_images"),
    ),
    "reinforcement-learning": (
        *modules("environment"),
        *stages("train_agent", "evaluate_agent", "export_agent", "validate_agent"),
        *tests("test_agent"),
    ),
}  # fmt: skip


def remove_framework_files(package: str, framework: str, task: str) -> None:
    """Keep only the chosen training framework's modules and extra requirements."""
    module = framework if task != "image" else f"{framework}_image"
    for path in Path("src", package, "frameworks").glob("*.py"):
        if path.stem not in ("__init__", module, "torch_networks", "keras_networks"):
            path.unlink()
    for extra in Path("requirements").glob("*.txt"):
        if extra.stem not in (framework, *(SHARED_EXTRAS if task == "tabular" else ())):
            extra.unlink()
    for path, frameworks in FRAMEWORK_FILES.items():
        if framework not in frameworks:
            Path(path.format(package=package)).unlink(missing_ok=True)


def remove_task_files(package: str, task: str) -> None:
    """Keep only the chosen task's modules, tests and data."""
    kept = set(TASK_FILES[task])
    for path in {path for files in TASK_FILES.values() for path in files} - kept:
        target = Path(path.format(package=package))
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    if Path("data").is_dir() and not any(Path("data").iterdir()):  # an agent has no data
        Path("data").rmdir()


def template_commit(repo_dir: str) -> str | None:
    """Return the template's git commit when it was generated from a local checkout."""
    if not shutil.which("git") or not Path(repo_dir, ".git").exists():
        return None
    result = subprocess.run(
        ["git", "-C", repo_dir, "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else None


def record_answers(answers: dict[str, object]) -> None:
    """Write ``.cruft.json`` so ``cruft update`` can apply later template changes."""
    context = {key: value for key, value in answers.items() if key not in RUN_LOCAL_KEYS}
    cruft = {
        "template": answers["_template"],
        "commit": template_commit(str(answers.get("_repo_dir", ""))),
        "checkout": answers.get("_checkout"),
        "context": {"cookiecutter": context},
        "directory": None,
        # This hook writes .cruft.json itself; cruft must not merge the template's rendering
        # of it into the project (it would leave .cruft.json.rej on every update).
        "skip": [".cruft.json"],
    }
    Path(".cruft.json").write_text(
        json.dumps(cruft, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def init_git() -> None:
    """Make the project a git repository (DVC needs one); never touches an enclosing repository."""
    if not shutil.which("git"):
        print("NOTICE: git not found; run 'git init' before 'dvc repro'.", file=sys.stderr)
        return
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main"], check=True)


def main() -> int:
    """Apply the post-generation steps for the answers rendered into this script."""
    answers = json.loads(r"""{{ cookiecutter | tojson }}""")
    remove_framework_files(str(answers["package"]), str(answers["framework"]), str(answers["task"]))
    remove_task_files(str(answers["package"]), str(answers["task"]))
    record_answers(answers)
    init_git()
    return 0


if __name__ == "__main__":
    sys.exit(main())
