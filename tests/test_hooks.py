"""Invalid answers stop generation in pre-gen, with a message naming the field and the rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from .baking import TEMPLATE, bake
from .matrix import UNSUPPORTED


@pytest.mark.parametrize("case", UNSUPPORTED, ids=list(UNSUPPORTED))
def test_invalid_answer_fails_before_any_file_is_written(
    case: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    answers, message = UNSUPPORTED[case]
    with pytest.raises((FailedHookException, ValueError)) as error:
        bake(tmp_path, **answers)
    assert message in capfd.readouterr().err + str(error.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"task": "video"}, "task: 'video' must be one of image, reinforcement-learning, tabular"),
        (
            {"framework": "xgboost"},
            "framework: 'xgboost' must be one of pytorch, rllib, sklearn, tensorflow",
        ),
        ({"python_version": "3.9"}, "python_version: '3.9' must be one of 3.10, 3.11"),
    ],
    ids=["unknown-task", "unknown-framework", "old-python"],
)
def test_replayed_answers_are_validated_too(
    answers: dict[str, str], message: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A replay (or cruft update) skips cookiecutter's choice check; pre-gen still refuses."""
    context = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    defaults = {
        key: value[0] if isinstance(value, list) else value for key, value in context.items()
    }
    rendered = {
        **defaults,
        "project": "my-ml-project",
        "package": "my_ml_project",
        "actions_repository": "example-org/cookiecutter-gitops-mlops",
        **answers,
    }
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"cookiecutter": rendered}))
    output = tmp_path / "out"
    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE), replay=str(replay), output_dir=str(output))
    assert message in capfd.readouterr().err
    assert not (output / "my-ml-project").exists()


def test_all_problems_are_reported_together(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(FailedHookException):
        bake(tmp_path, author_email="nope", github_owner="-x-", package="def")
    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("ERROR")]
    assert [line.split(":")[1].split()[-1] for line in errors] == [
        "package",
        "author_email",
        "github_owner",
    ]
