"""Create or update one sticky pull-request comment holding the model report.

The comment is found again by a hidden marker, so every push to the pull request updates the
same comment instead of adding one. Pull requests from forks get a read-only token: the
report then stays in the job summary, with a notice saying why.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_mlops import inputs, workflow
from gitops_mlops.github import GitHub


@dataclass(frozen=True)
class Inputs:
    """This action's inputs (see action.yml)."""

    report: str
    github_token: str
    marker: str


def comment_body(report: str, marker: str) -> str:
    """The report with the hidden marker that identifies the sticky comment."""
    return f"<!-- {marker} -->\n{report}"


def from_fork(event: dict[str, Any], repository: str) -> bool:
    """Whether the pull request's head lives in another repository."""
    head = event.get("pull_request", {}).get("head", {}).get("repo") or {}
    return head.get("full_name", repository) != repository


def degrade(reason: str) -> int:
    """Keep the report in the summary and say why no comment was posted."""
    message = f"Report not posted as a pull-request comment: {reason}. It is in this job summary."
    workflow.notice(message)
    workflow.append_summary(f"> [!NOTE]\n> {message}")
    workflow.set_output("posted", "false")
    return 0


def main() -> int:
    """Post or update the comment; outputs ``posted`` and ``comment-id``."""
    given = inputs.read(Inputs)
    report = Path(given.report).read_text(encoding="utf-8")
    marker = given.marker
    repository = os.environ["GITHUB_REPOSITORY"]
    event = json.loads(Path(os.environ["GITHUB_EVENT_PATH"]).read_text(encoding="utf-8"))
    number = event.get("pull_request", {}).get("number")
    if number is None:
        return degrade("this run is not for a pull request")
    if from_fork(event, repository):
        return degrade("pull requests from forks get a read-only token")
    github = GitHub(os.environ["GITHUB_API_URL"], repository, given.github_token)
    try:
        comment_id, action = github.upsert_comment(
            int(number), marker, comment_body(report, marker)
        )
    except urllib.error.HTTPError as failure:
        if failure.code in (401, 403, 404):
            return degrade(f"the token may not write comments (HTTP {failure.code})")
        raise
    workflow.notice(f"pull-request comment {comment_id} {action}")
    workflow.set_output("posted", "true")
    workflow.set_output("comment-id", str(comment_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
