"""Commit a change to git and push it without ever losing a concurrent one.

On a rejected (non-fast-forward) push the change is re-applied on top of the new remote head
and pushed again: two rollouts racing for the same branch both land, one after the other.
Nothing is ever force-pushed to the target branch.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

ATTEMPTS = 5


class GitError(RuntimeError):
    """A git command failed for a reason retrying cannot fix."""


def git(
    *args: str, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run git; raise :class:`GitError` with its output when ``check`` and it fails."""
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise GitError(
            f"git {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}"
        )
    return result


def commit_paths(paths: list[Path], message: str, cwd: Path | None = None) -> str | None:
    """Commit ``paths``; None when they hold no change (nothing to roll out)."""
    git("add", "--", *map(str, paths), cwd=cwd)
    if git("diff", "--cached", "--quiet", cwd=cwd, check=False).returncode == 0:
        return None
    git("commit", "--quiet", "-m", message, cwd=cwd)
    return git("rev-parse", "HEAD", cwd=cwd).stdout.strip()


def push_with_retry(
    branch: str,
    apply: Callable[[], str | None],
    cwd: Path | None = None,
    remote: str = "origin",
    attempts: int = ATTEMPTS,
) -> str | None:
    """Apply (edit and commit) then push to ``branch``; on rejection rebase by re-applying.

    ``apply`` makes the commit on the current HEAD and returns its sha, or None when there is
    nothing to commit. Returns the sha that reached the remote.
    """
    for attempt in range(1, attempts + 1):
        sha = apply()
        if sha is None:
            return None
        pushed = git(
            "push", "--porcelain", remote, f"HEAD:refs/heads/{branch}", cwd=cwd, check=False
        )
        if pushed.returncode == 0:
            return sha
        if not overtaken(pushed):
            # Refused by the server (branch protection, a hook, permissions): retrying cannot
            # help, and its own words say why.
            raise GitError(f"push to {remote}/{branch} refused: {refusal(pushed)}")
        # Someone pushed first: start again from their commit and re-apply our change.
        git("fetch", "--quiet", remote, branch, cwd=cwd)
        git("reset", "--quiet", "--hard", "FETCH_HEAD", cwd=cwd)
        time.sleep(0.2 * attempt)
    raise GitError(f"push to {remote}/{branch} still rejected after {attempts} attempts")


# What a push says when someone else updated the branch first: a race, worth re-applying.
# Git reports it as non-fast-forward or, when both pushes reach the server together, as a
# ref it could not lock. Anything else the server refuses (branch protection, hooks,
# permissions) is final.
RACE = ("(fetch first)", "(non-fast-forward)", "(failed to update ref)", "cannot lock ref")


def overtaken(pushed: subprocess.CompletedProcess[str]) -> bool:
    """Whether a failed ``git push --porcelain`` lost a race rather than being refused."""
    statuses = [line for line in pushed.stdout.splitlines() if line.startswith("!")]
    return bool(statuses) and all(
        any(sign in f"{line} {pushed.stderr}" for sign in RACE) for line in statuses
    )


def refusal(pushed: subprocess.CompletedProcess[str]) -> str:
    """The server's explanation of a refused push: its ``remote:`` lines and the ref status."""
    lines = [
        line.removeprefix("remote:").strip()
        for line in pushed.stderr.splitlines()
        if line.startswith("remote:")
    ]
    status = [line for line in pushed.stdout.splitlines() if line.startswith("!")]
    return "; ".join(part for part in [*lines, *status] if part) or pushed.stderr.strip()


def revert(sha: str, branch: str, cwd: Path | None = None, remote: str = "origin") -> str | None:
    """Push a commit that undoes ``sha`` on ``branch`` (re-applied if others pushed meanwhile)."""

    def apply() -> str:
        git("revert", "--no-edit", sha, cwd=cwd)
        return git("rev-parse", "HEAD", cwd=cwd).stdout.strip()

    return push_with_retry(branch, apply, cwd=cwd, remote=remote)
