"""The baseline a new model is judged against: the model at a git ref, on today's test data.

``<cli> baseline --ref REF`` (``make validate BASE=REF``) puts it into ``baseline/``, which the
``validate`` stage declares as a DVC dependency, so ``dvc repro`` stays the one way to run
the gates. In order of preference:

- ``model``: the ref's serving bundle, from the DVC cache or remote. ``validate`` scores it
  on the current test split (or, for an agent, the same evaluation episodes), so both models
  are compared on the same data.
- ``metrics``: the metrics committed at the ref, computed on whatever test split existed
  then; the verdict says so and names both test-split hashes.
- ``none``: no ref, or nothing found at it; absolute thresholds only.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from .config import Paths, ValidateParams
from .files import md5, read_json, write_json
from .gates import decide
from .serve.bundle import read_manifest
from .serve.model import OnnxModel
from .verdict import Baseline, Verdict

log = logging.getLogger(__name__)

RECORD = "baseline.json"
BUNDLE = "bundle"
METRICS = "metrics.json"
KEEP = {"README.md", ".gitignore"}  # committed, so the folder (a DVC dependency) always exists


def _git(root: Path, *args: str) -> str | None:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    return result.stdout if result.returncode == 0 else None


def _test_split_md5(root: Path, commit: str, paths: Paths) -> str | None:
    lock = _git(root, "show", f"{commit}:{paths.dvc_lock.relative_to(paths.root).as_posix()}")
    if lock is None:
        return None
    test = paths.test.relative_to(paths.root).as_posix()
    for stage in (yaml.safe_load(lock) or {}).get("stages", {}).values():
        for out in stage.get("outs", []):
            if out.get("path") == test:
                return out.get("md5")
    return None


def _clear(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for item in folder.iterdir():
        if item.name not in KEEP:
            shutil.rmtree(item) if item.is_dir() else item.unlink()


def fetch(ref: str | None, paths: Paths) -> Baseline:
    """Materialize the baseline for ``ref`` into ``paths.baseline``; return what was found."""
    folder = paths.baseline
    _clear(folder)
    found = _find(ref, paths)
    write_json(folder / RECORD, asdict(found))
    log.info("baseline: %s", found.note)
    return found


def _find(ref: str | None, paths: Paths) -> Baseline:
    folder, root = paths.baseline, paths.root
    if not ref:
        return Baseline("none", note="no baseline ref given")
    commit = _git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", ref + "^{commit}")
    if commit is None:
        return Baseline("none", ref=ref, note=f"{ref!r} names no commit in this repository")
    commit = commit.strip()
    where = commit[:12] if commit.startswith(ref) else f"{ref} ({commit[:12]})"
    split = _test_split_md5(root, commit, paths)
    try:
        from dvc.api import DVCFileSystem  # only this command needs DVC's API

        bundle = paths.bundle.relative_to(root).as_posix()
        DVCFileSystem(str(root.resolve()), rev=commit).get(
            bundle, str(folder / BUNDLE), recursive=True
        )
        return Baseline("model", ref, commit, test_split_md5=split, note=f"the model of {where}")
    except Exception as error:  # noqa: BLE001 - any DVC failure means: fall back to metrics
        shutil.rmtree(folder / BUNDLE, ignore_errors=True)
        missing = (
            f"the model of {where} is in neither the DVC cache nor the remote "
            f"({type(error).__name__})"
        )
    metrics = _git(root, "show", f"{commit}:{paths.metrics.relative_to(root).as_posix()}")
    if metrics is None:
        return Baseline("none", ref, commit, note=f"{missing}, and no metrics are committed there")
    (folder / METRICS).write_text(metrics, encoding="utf-8")
    return Baseline(
        "metrics", ref, commit, test_split_md5=split, note=f"{missing}: its committed metrics"
    )


def load(paths: Paths, score: Callable[[OnnxModel], dict[str, float]], split: str) -> Baseline:
    """The baseline's metrics for this run's test split (``split`` is its MD5).

    A baseline model is scored by ``score`` on this run's test data; committed metrics are
    used as they are, and the note says that they come from another test split when the
    hashes differ.
    """
    folder = paths.baseline
    if not (folder / RECORD).is_file():
        return Baseline(
            "none", note="none fetched (make validate BASE=<git ref> compares with one)"
        )
    found = Baseline(**read_json(folder / RECORD))
    if found.source == "model":
        try:
            scores = score(OnnxModel.load(folder / BUNDLE))
        except Exception as error:  # noqa: BLE001 - an incompatible old model: say so, fall back
            return Baseline(
                "none",
                found.ref,
                found.commit,
                note=f"{found.note} cannot score this test split: {error}",
            )
        return Baseline(
            "model", found.ref, found.commit, scores, split,
            note=f"{found.note}, scored on this run's test split",
        )  # fmt: skip
    if found.source == "metrics":
        scores: dict[str, Any] = json.loads((folder / METRICS).read_text(encoding="utf-8"))
        same = found.test_split_md5 == split
        where = (
            "the same test split"
            if same
            else (f"test split {found.test_split_md5 or 'unknown'}, not this run's {split}")
        )
        return Baseline(
            "metrics", found.ref, found.commit, scores, found.test_split_md5,
            note=f"{found.note}, computed on {where}",
        )  # fmt: skip
    return found


def judged(
    paths: Paths,
    gates: ValidateParams,
    score: Callable[[OnnxModel], dict[str, float]],
    inapplicable: dict[str, str],
) -> Verdict:
    """The verdict on the run's metrics and parity, and against the baseline scored by ``score``.

    For tasks with no fairness, privacy or encryption gate: ``inapplicable`` says why.
    """
    split = md5(paths.test)
    return decide(
        read_json(paths.metrics),
        {},
        read_json(paths.parity),
        gates,
        load(paths, score, split),
        model_sha256=read_manifest(paths.bundle)["model_sha256"],
        test_split_md5=split,
        inapplicable=inapplicable,
    )
