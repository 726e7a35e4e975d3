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


# Frameworks that train neural networks share src/<package>/networks.py.
NETWORK_FRAMEWORKS = ("pytorch", "tensorflow")
# Files only some frameworks use: scikit-learn's Fairlearn mitigation and private training.
FRAMEWORK_FILES = {
    "src/{package}/mitigation.py": ("sklearn",),
    "src/{package}/private_training.py": ("sklearn",),
    "tests/test_private_training.py": ("sklearn",),
}
# Extra requirements every tabular project keeps, whatever its framework: Ray for tune.
SHARED_EXTRAS = ("tune",)
# Files of one task only. A reinforcement-learning project has no dataset: its agent learns
# in an environment, and its stages and tests are its own.
TABULAR_FILES = (
    "data",
    "deploy/ray",
    "notebooks",
    "requirements/tune.txt",
    *(
        "src/{package}/" + module + ".py"
        for module in (
            "data", "data_statistics", "encrypted_client", "explanation_page", "explanations",
            "metrics", "model_card", "tabular", "tuning",
            *(f"stages/{stage}" for stage in (
                "ingest", "prepare", "describe", "tune", "train", "evaluate", "export",
                "explain", "validate",
            )),
        )
    ),
    *(
        f"tests/{module}.py"
        for module in (
            "conftest", "test_batching", "test_cli", "test_data", "test_data_statistics",
            "test_encrypted", "test_explanations", "test_model",
            "test_model_repository", "test_open_inference", "test_serve", "test_serve_properties",
            "test_tuning", "test_validate",
        )
    ),
)  # fmt: skip
AGENT_FILES = (
    "src/{package}/environment.py",
    *(
        "src/{package}/stages/" + stage + "_agent.py"
        for stage in ("train", "evaluate", "export", "validate")
    ),
    "tests/test_agent.py",
)  # fmt: skip


def remove_framework_files(package: str, framework: str) -> None:
    """Keep only the chosen training framework's modules and extra requirements."""
    for module in Path("src", package, "frameworks").glob("*.py"):
        if module.stem not in ("__init__", framework):
            module.unlink()
    for extra in Path("requirements").glob("*.txt"):
        if extra.stem not in (framework, *SHARED_EXTRAS):
            extra.unlink()
    if framework not in NETWORK_FRAMEWORKS:
        Path("src", package, "networks.py").unlink()
    for path, frameworks in FRAMEWORK_FILES.items():
        if framework not in frameworks:
            Path(path.format(package=package)).unlink()


def remove_task_files(package: str, task: str) -> None:
    """Keep only the chosen task's modules, tests and data."""
    for path in TABULAR_FILES if task != "tabular" else AGENT_FILES:
        target = Path(path.format(package=package))
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


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
    remove_framework_files(str(answers["package"]), str(answers["framework"]))
    remove_task_files(str(answers["package"]), str(answers["task"]))
    record_answers(answers)
    init_git()
    return 0


if __name__ == "__main__":
    sys.exit(main())
