"""Validate every cookiecutter answer before a single file of the project is written.

Each rule names the field and what it expects; all failures are reported at once and the
hook exits 1, so cookiecutter removes the (still empty) project folder. The values a choice
accepts come from the template's ``cookiecutter.json``, the one place they are declared, so a
replayed answer (``--replay``, ``cruft update``) is checked against the same lists.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

Rule = Callable[[str], str | None]

# The frameworks that train each task.
TASK_FRAMEWORKS = {
    "tabular": ("sklearn", "pytorch", "tensorflow"),
    "reinforcement-learning": ("rllib",),
    "image": ("pytorch", "tensorflow"),
}

# Import names the generated project depends on (plus its own test package): a project or
# package of the same name would shadow them.
DEPENDENCY_MODULES = frozenset(
    {
        "dvc", "fairlearn", "gymnasium", "httptools", "joblib", "mlflow", "numpy", "onnx",
        "onnxruntime", "orjson", "pandas", "pydantic", "pydantic_settings", "pytest", "ray",
        "ruff", "skl2onnx", "sklearn", "tests", "torch", "typer", "uvicorn", "uvloop", "yaml",
    }
)  # fmt: skip


def matches(pattern: str, expectation: str) -> Rule:
    """Build a rule that accepts values fully matching ``pattern``."""
    compiled = re.compile(pattern)
    return lambda value: None if compiled.fullmatch(value) else expectation


def one_of(choices: tuple[str, ...]) -> Rule:
    """Build a rule that accepts only ``choices``."""
    listed = ", ".join(sorted(choices))
    return lambda value: None if value in choices else f"must be one of {listed}"


def shadowing(name: str) -> str | None:
    """Refuse an import or distribution name that the project itself needs."""
    if name in sys.stdlib_module_names:
        return "would shadow the standard-library module of the same name"
    if name in DEPENDENCY_MODULES:
        return "would shadow a library the generated project depends on"
    return None


def python_package(value: str) -> str | None:
    """Accept an importable, non-shadowing Python package name."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,39}", value):
        return "must be 1-40 lowercase letters, digits and underscores, starting with a letter or _"
    if keyword.iskeyword(value):
        return "is a Python keyword"
    return shadowing(value)


def project_name(value: str) -> str | None:
    """Accept a lowercase, hyphenated distribution name that shadows no dependency."""
    if not re.fullmatch(r"(?=.{1,40}$)[a-z][a-z0-9]*(-[a-z0-9]+)*", value):
        return "must be 1-40 lowercase letters and digits in hyphen-separated words, letter first"
    return shadowing(value.replace("-", "_"))


def git_ref(value: str) -> str | None:
    """Accept a tag, branch or commit SHA by git's ref-name rules (git check-ref-format)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", value):
        return "must be a git tag, branch or commit SHA"
    if ".." in value or "//" in value or value.endswith((".lock", "/", ".")) or "/." in value:
        return "is not a valid git ref name (no '..', '//', '/.', or trailing '.lock', '/', '.')"
    return None


def registry(value: str) -> str | None:
    """Accept a registry host with optional port and path, without empty or dot segments."""
    pattern = r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    if not re.fullmatch(pattern, value) or ".." in value:
        return (
            "must be a registry host with optional port and path, "
            "like ghcr.io or localhost:5000/team"
        )
    return None


def single_line(max_length: int) -> Rule:
    """Accept a non-empty single-line string of at most ``max_length`` characters."""

    def rule(value: str) -> str | None:
        if not value.strip():
            return "must not be empty"
        if "\n" in value or "\r" in value:
            return "must be a single line"
        if any(ord(char) < 32 or ord(char) == 127 for char in value):
            return "must not contain control characters"
        if len(value) > max_length:
            return f"must be at most {max_length} characters"
        return None

    return rule


def declared_choices(options: dict[str, object], repo_dir: object) -> dict[str, object] | None:
    """The questions as ``cookiecutter.json`` declares them, choice lists included.

    A normal run hands the hook the lists themselves (``options``). A replay hands it only
    the recorded answers, so the template's file is read (``repo_dir`` may be relative to
    where cookiecutter was started). cruft renders recorded answers through cookiecutter's
    ``generate_context``, which refuses a value outside a choice list itself: None then.
    """
    if any(isinstance(value, list) for value in options.values()):
        return options
    if repo_dir:
        path = Path(os.environ.get("PWD", "."), str(repo_dir), "cookiecutter.json")
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    return None


def rules(template: dict[str, object] | None) -> dict[str, Rule]:
    """One rule per question; choice questions accept the lists in ``cookiecutter.json``."""

    def choice(key: str) -> Rule:
        if template is None:
            return lambda value: None
        return one_of(tuple(template[key]))  # type: ignore[arg-type]

    return {
        "project_name": single_line(100),
        "project": project_name,
        "package": python_package,
        "description": single_line(300),
        "author_name": single_line(100),
        "author_email": matches(
            r"[^@\s]+@[^@\s]+\.[^@\s]+", "must be an e-mail address like name@example.com"
        ),
        "github_owner": matches(
            r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}",
            "must be a GitHub user or organisation name (letters, digits, inner hyphens, max 39)",
        ),
        "python_version": choice("python_version"),
        "task": choice("task"),
        "framework": choice("framework"),
        "container_registry": registry,
        "actions_repository": matches(
            r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+", "must be a GitHub repository as owner/name"
        ),
        "actions_ref": git_ref,
    }


def problems(answers: dict[str, object], template: dict[str, object] | None) -> list[str]:
    """Return one message per answer that breaks its rule."""
    found = []
    for field, rule in rules(template).items():
        value = answers.get(field)
        if not isinstance(value, str):
            found.append(f"{field}: must be a string, got {value!r}")
            continue
        reason = rule(value)
        if reason:
            found.append(f"{field}: {value!r} {reason}")
    return found + combination(answers)


def combination(answers: dict[str, object]) -> list[str]:
    """Refuse a framework that does not train the chosen task."""
    task, framework = answers.get("task"), answers.get("framework")
    frameworks = TASK_FRAMEWORKS.get(str(task))
    if frameworks is None or framework in frameworks:
        return []
    return [
        f"framework: {framework!r} does not train the {task} task; "
        f"choose {' or '.join(frameworks)} (or another task)"
    ]


def main() -> int:
    """Validate the answers cookiecutter rendered into this script."""
    answers = json.loads(r"""{{ cookiecutter | tojson }}""")
    options = json.loads(r"""{{ _cookiecutter | default({}) | tojson }}""")
    found = problems(answers, declared_choices(options, answers.get("_repo_dir")))
    for message in found:
        print(f"ERROR: invalid answer {message}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
