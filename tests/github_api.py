"""A local stand-in for the GitHub REST API, answering with hand-assembled responses.

The GitHub API cannot be reached from the test machine. This server answers with JSON
hand-assembled in the shape of the documented responses (``recordings/github/*.json``: the
authenticated user, or the 403 GITHUB_TOKEN gets for it; list, create and update issue
comments; pull requests; the 403 a read-only fork token gets); none was captured from
github.com. It records every request, so tests can assert on the exact calls and bodies the
actions send. The real client code (urllib) talks to it over HTTP.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .local_http import JSONHandler, LocalServer

RECORDINGS = Path(__file__).parent / "recordings" / "github"


def recording(name: str) -> dict[str, Any]:
    return json.loads((RECORDINGS / f"{name}.json").read_text())


@dataclass
class Request:
    method: str
    path: str
    authorization: str
    body: dict[str, Any] | None


@dataclass
class FakeGitHub:
    """Issue comments of one repository, in memory; ``forbid_writes`` mimics a fork token."""

    repository: str = "example-org/my-ml-project"
    comments: list[dict[str, Any]] = field(default_factory=list)
    pulls: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    forbid_writes: bool = False
    # None: the token is GITHUB_TOKEN (GET /user is forbidden); else the user a PAT belongs to.
    token_user: str | None = None
    # GitHub's default for new repositories: Actions may not open pull requests.
    forbid_pull_requests: bool = False
    next_id: int = 1998877665

    def add_comment(
        self, body: str, template: str = "issue_comment", author: str | None = None
    ) -> dict[str, Any]:
        comment = copy.deepcopy(recording(template))
        comment["id"], comment["body"] = self.next_id, body
        if author:
            comment["user"]["login"] = author
        self.next_id += 1
        self.comments.append(comment)
        return comment

    def handle(self, method: str, path: str, body: dict | None) -> tuple[int, Any]:
        if path == "/user":
            if self.token_user is None:
                return 403, recording("user_forbidden")
            return 200, {**recording("user"), "login": self.token_user}
        prefix = f"/repos/{self.repository}"
        if not path.startswith(prefix):
            return 404, {"message": "Not Found"}
        route = path[len(prefix) :]
        if method != "GET" and self.forbid_writes:
            return 403, recording("forbidden")
        if listing := re.fullmatch(r"/issues/(\d+)/comments\?per_page=(\d+)&page=(\d+)", route):
            size, page = int(listing.group(2)), int(listing.group(3))
            return 200, self.comments[(page - 1) * size : page * size]
        if method == "POST" and re.fullmatch(r"/issues/\d+/comments", route):
            return 201, self.add_comment(body["body"], author=self.token_user)
        if method == "GET" and route.startswith("/pulls?"):
            return 200, [
                pull
                for pull in self.pulls
                if f"head=example-org:{pull['head']['ref']}&" in route + "&"
            ]
        if method == "POST" and route == "/pulls" and self.forbid_pull_requests:
            return 403, recording("pull_request_forbidden")
        if method == "POST" and route == "/pulls":
            pull = copy.deepcopy(recording("pull_request"))
            pull.update(title=body["title"], body=body["body"], number=8 + len(self.pulls))
            pull["head"]["ref"], pull["base"]["ref"] = body["head"], body["base"]
            self.pulls.append(pull)
            return 201, pull
        if method == "PATCH" and (match := re.fullmatch(r"/issues/comments/(\d+)", route)):
            for comment in self.comments:
                if comment["id"] == int(match.group(1)):
                    comment["body"] = body["body"]
                    return 200, comment
        return 404, {"message": "Not Found"}


class Server(LocalServer):
    """Serve a :class:`FakeGitHub` on a free localhost port, in a thread."""

    def __init__(self, github: FakeGitHub) -> None:
        class Handler(JSONHandler):
            def _respond(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                github.requests.append(
                    Request(self.command, self.path, self.headers.get("Authorization", ""), body)
                )
                self.answer(*github.handle(self.command, self.path, body))

            do_GET = do_POST = do_PATCH = _respond  # noqa: N815 - http.server's names

        super().__init__(Handler)
        self.github = github
