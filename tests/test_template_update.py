"""Generated projects follow the template: ``cruft update`` applies template changes cleanly.

A copy of this template becomes a git repository at one commit; a project is baked from it
and committed; the template then changes (an edited file, a new file) and ``cruft update``
must apply both with no ``.rej`` leftovers, after which the project's own tests still pass.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from .baking import DEFAULT_PROJECT_TESTS, TEMPLATE, install

pytestmark = pytest.mark.e2e
CRUFT = str(Path(sys.executable).parent / "cruft")
IDENTITY = ["-c", "user.name=t", "-c", "user.email=t@example.com"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def template_repository(destination: Path) -> Path:
    """This template's files (as in the working tree) committed in a new repository."""
    listed = git(TEMPLATE, "ls-files", "--cached", "--others", "--exclude-standard").splitlines()
    for name in listed:
        source = TEMPLATE / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    git(destination, "init", "-q", "-b", "main")
    git(destination, "add", "-A")
    git(destination, "commit", "-qm", "template v1")
    return destination


def test_cruft_update_applies_template_changes_cleanly(tmp_path: Path) -> None:
    template = template_repository(tmp_path / "template")
    first = git(template, "rev-parse", "HEAD")
    root = Path(cookiecutter(str(template), no_input=True, output_dir=str(tmp_path / "out")))
    recorded = json.loads((root / ".cruft.json").read_text())
    assert recorded["commit"] == first
    assert recorded["skip"] == [".cruft.json"]
    git(root, "add", "-A")
    git(root, "commit", "-qm", "generated project")

    makefile = template / "{{cookiecutter.project}}" / "Makefile"
    makefile.write_text(makefile.read_text().replace("## List the targets", "## List every target"))
    guide = template / "{{cookiecutter.project}}" / "docs" / "UPGRADING.md"
    guide.parent.mkdir()
    guide.write_text("# Upgrading {{ cookiecutter.project_name }}\n")
    git(template, "add", "-A")
    git(template, "commit", "-qm", "template v2")
    second = git(template, "rev-parse", "HEAD")

    behind = subprocess.run([CRUFT, "check"], cwd=root, capture_output=True, text=True)
    assert behind.returncode == 1
    assert "Project's cruft is out of date" in behind.stdout + behind.stderr
    updated = subprocess.run(
        [CRUFT, "update", "--skip-apply-ask", "--allow-untracked-files"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert sorted(path.name for path in root.rglob("*.rej")) == []
    assert "## List every target" in (root / "Makefile").read_text()
    assert (root / "docs" / "UPGRADING.md").read_text() == "# Upgrading My ML Project\n"
    assert json.loads((root / ".cruft.json").read_text())["commit"] == second
    current = subprocess.run([CRUFT, "check"], cwd=root, capture_output=True, text=True)
    assert current.returncode == 0
    assert "Project's cruft is up to date" in current.stdout + current.stderr

    project = install(root, tmp_path / "venv")
    assert project.assert_own_tests_pass() == DEFAULT_PROJECT_TESTS
