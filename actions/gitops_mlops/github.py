"""The few GitHub REST calls the actions make (stdlib only): comments and pull requests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

PER_PAGE = 100
# Who GITHUB_TOKEN writes as; GET /user answers 403 for it (an installation token).
ACTIONS_BOT = "github-actions[bot]"


class GitHub:
    """A repository's REST endpoints, authenticated with a token."""

    def __init__(self, api_url: str, repository: str, token: str) -> None:
        self.root = api_url.rstrip("/")
        self.base = f"{self.root}/repos/{repository}"
        self.token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """A repository endpoint (``path`` below ``/repos/<owner>/<name>``)."""
        return self.request(method, f"{self.base}{path}", body)

    def identity(self) -> str:
        """The login the token writes as: GET /user, or the Actions bot for GITHUB_TOKEN."""
        try:
            return str(self.request("GET", f"{self.root}/user")["login"])
        except urllib.error.HTTPError as failure:
            if failure.code in (401, 403):
                return ACTIONS_BOT
            raise

    def request(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        """One authenticated REST call; HTTP errors are raised."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the runner's API URL
            url,
            data=data,
            method=method,
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self.token}",
                "X-GitHub-Api-Version": "2022-11-28",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read() or b"null")

    def find_comment(self, number: int, marker: str, author: str) -> int | None:
        """The id of ``author``'s comment carrying ``marker``, paging through all comments.

        Only the author's own comments count: anyone can paste the marker into a comment, and
        that comment must not be taken over.
        """
        page = 1
        while True:
            comments = self.call(
                "GET", f"/issues/{number}/comments?per_page={PER_PAGE}&page={page}"
            )
            for comment in comments:
                mine = (comment.get("user") or {}).get("login") == author
                if mine and marker in (comment.get("body") or ""):
                    return int(comment["id"])
            if len(comments) < PER_PAGE:
                return None
            page += 1

    def upsert_comment(self, number: int, marker: str, body: str) -> tuple[int, str]:
        """Update this token's marked comment, or create it; returns its id and what was done."""
        existing = self.find_comment(number, marker, self.identity())
        if existing is None:
            created = self.call("POST", f"/issues/{number}/comments", {"body": body})
            return int(created["id"]), "created"
        self.call("PATCH", f"/issues/comments/{existing}", {"body": body})
        return existing, "updated"

    def open_pull_request(self, head: str, base: str, title: str, body: str) -> dict[str, Any]:
        """Open a pull request from ``head`` into ``base``; reuse the open one if it exists."""
        owner = self.base.split("/repos/")[1].split("/")[0]
        existing = self.call("GET", f"/pulls?state=open&head={owner}:{head}&base={base}")
        if existing:
            return existing[0]
        return self.call(
            "POST", "/pulls", {"title": title, "head": head, "base": base, "body": body}
        )
