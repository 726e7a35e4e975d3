"""The Inputs and Outputs tables of an action's README, rendered from its ``action.yml``.

``python -m tests.action_docs`` rewrites every README's tables; a test checks they are current.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ACTIONS = Path(__file__).resolve().parents[1] / "actions"


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def tables(action_yml: Path) -> str:
    """The ``## Inputs`` and ``## Outputs`` sections for ``action_yml``."""
    action = yaml.safe_load(action_yml.read_text(encoding="utf-8"))
    lines = ["## Inputs", "", "| input | required | default | description |"]
    lines.append("| --- | --- | --- | --- |")
    for name, spec in action.get("inputs", {}).items():
        required = "yes" if spec.get("required") else "no"
        default = f"`{_cell(spec['default'])}`" if spec.get("default") else ""
        lines.append(f"| `{name}` | {required} | {default} | {_cell(spec['description'])} |")
    lines += ["", "## Outputs", "", "| output | description |", "| --- | --- |"]
    for name, spec in action.get("outputs", {}).items():
        lines.append(f"| `{name}` | {_cell(spec['description'])} |")
    return "\n".join(lines) + "\n"


SECTIONS = re.compile(r"## Inputs\n.*?## Outputs\n\n(?:\|.*\|\n)+", re.S)


def refresh(readme: Path) -> str:
    """The README text with its tables rendered anew."""
    text = readme.read_text(encoding="utf-8")
    return SECTIONS.sub(lambda _: tables(readme.parent / "action.yml"), text, count=1)


if __name__ == "__main__":
    for path in sorted(ACTIONS.glob("*/README.md")):
        path.write_text(refresh(path), encoding="utf-8")
