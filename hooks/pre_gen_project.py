"""Validate every cookiecutter answer before a single file of the project is written.

Each rule names the field and what it expects; all failures are reported at once and the
hook exits 1, so cookiecutter removes the (still empty) project folder.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from collections.abc import Callable

SUPPORTED_PYTHON = ("3.10", "3.11", "3.12", "3.13")
SUPPORTED_FRAMEWORKS = ("sklearn",)
PLANNED_FRAMEWORKS = ("pytorch",)

Rule = Callable[[str], str | None]


def matches(pattern: str, expectation: str) -> Rule:
    """Build a rule that accepts values fully matching ``pattern``."""
    compiled = re.compile(pattern)
    return lambda value: None if compiled.fullmatch(value) else expectation


def one_of(choices: tuple[str, ...], planned: tuple[str, ...] = ()) -> Rule:
    """Build a rule that accepts only ``choices``; ``planned`` ones get a friendlier message."""

    def rule(value: str) -> str | None:
        if value in choices:
            return None
        if value in planned:
            return f"is planned but not available yet; choose one of {', '.join(choices)}"
        return f"must be one of {', '.join(choices)}"

    return rule


def python_package(value: str) -> str | None:
    """Accept an importable, non-shadowing Python package name."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,39}", value):
        return "must be 1-40 lowercase letters, digits and underscores, starting with a letter or _"
    if keyword.iskeyword(value):
        return "is a Python keyword"
    if value in sys.stdlib_module_names:
        return "would shadow the standard-library module of the same name"
    return None


def single_line(max_length: int) -> Rule:
    """Accept a non-empty single-line string of at most ``max_length`` characters."""

    def rule(value: str) -> str | None:
        if not value.strip():
            return "must not be empty"
        if "\n" in value or "\r" in value:
            return "must be a single line"
        if len(value) > max_length:
            return f"must be at most {max_length} characters"
        return None

    return rule


RULES: dict[str, Rule] = {
    "project_name": single_line(100),
    "project": matches(
        r"(?=.{1,40}$)[a-z][a-z0-9]*(-[a-z0-9]+)*",
        "must be 1-40 lowercase letters and digits in hyphen-separated words, letter first",
    ),
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
    "python_version": one_of(SUPPORTED_PYTHON),
    "framework": one_of(SUPPORTED_FRAMEWORKS, PLANNED_FRAMEWORKS),
    "container_registry": matches(
        r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9._-]+)*",
        "must be a registry host with optional port and path, like ghcr.io or localhost:5000/team",
    ),
    "actions_repository": matches(
        r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+", "must be a GitHub repository as owner/name"
    ),
    "actions_ref": matches(
        r"[A-Za-z0-9][A-Za-z0-9._/-]*", "must be a git tag, branch or commit SHA"
    ),
}


def problems(answers: dict[str, object]) -> list[str]:
    """Return one message per answer that breaks its rule."""
    found = []
    for field, rule in RULES.items():
        value = answers.get(field)
        if not isinstance(value, str):
            found.append(f"{field}: must be a string, got {value!r}")
            continue
        reason = rule(value)
        if reason:
            found.append(f"{field}: {value!r} {reason}")
    return found


def main() -> int:
    """Validate the answers cookiecutter rendered into this script."""
    answers = json.loads(r"""{{ cookiecutter | tojson }}""")
    found = problems(answers)
    for message in found:
        print(f"ERROR: invalid answer {message}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
