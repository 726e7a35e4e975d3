"""Bakes shared by the whole session: one per supported combination, made once.

Tests that only read a baked project use ``baked`` (every combination) or ``baked_default``;
tests that change a project get their own copy with :func:`tests.baking.fresh`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .baking import Project, bake, fresh, install
from .infra import Images
from .matrix import SUPPORTED

_IMAGES_BEFORE = pytest.StashKey[Images]()


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # the controller, before any worker starts
        session.config.stash[_IMAGES_BEFORE] = Images.now()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _IMAGES_BEFORE in session.config.stash:  # the controller, after every worker is done
        session.config.stash[_IMAGES_BEFORE].remove_newer()


@pytest.fixture(scope="session")
def bakes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Combination id -> its baked project, baked on first use."""
    return _Bakes(tmp_path_factory)


class _Bakes(dict):
    def __init__(self, factory: pytest.TempPathFactory) -> None:
        super().__init__()
        self.factory = factory

    def __missing__(self, key: str) -> Path:
        self[key] = bake(self.factory.mktemp(f"bake-{key}"), **SUPPORTED[key])
        return self[key]


@pytest.fixture(scope="session", params=list(SUPPORTED), ids=list(SUPPORTED))
def baked(request: pytest.FixtureRequest, bakes: dict[str, Path]) -> Path:
    return bakes[request.param]


TABULAR = [key for key, answers in SUPPORTED.items() if answers.get("task", "tabular") == "tabular"]


@pytest.fixture(scope="session", params=TABULAR, ids=TABULAR)
def baked_tabular(request: pytest.FixtureRequest, bakes: dict[str, Path]) -> Path:
    """Each supported combination of the tabular task (what only its projects hold)."""
    return bakes[request.param]


@pytest.fixture(scope="session")
def baked_default(bakes: dict[str, Path]) -> Path:
    return bakes["default"]


@pytest.fixture(scope="session")
def reproduced(baked_default: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The default project, installed, its pipeline run and everything committed.

    For tests that only read it (lineage, MLflow, the image build); one per worker.
    """
    return reproduce(baked_default, tmp_path_factory.mktemp("reproduced"))


@pytest.fixture(scope="session")
def reproduced_pytorch(bakes: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The PyTorch project, reproduced like :func:`reproduced`."""
    return reproduce(bakes["pytorch"], tmp_path_factory.mktemp("reproduced-pytorch"))


@pytest.fixture(scope="session")
def reproduced_tensorflow(
    bakes: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Project:
    """The TensorFlow project, reproduced like :func:`reproduced`."""
    return reproduce(bakes["tensorflow"], tmp_path_factory.mktemp("reproduced-tensorflow"))


@pytest.fixture(scope="session")
def reproduced_image_pytorch(
    bakes: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Project:
    """The image-classification project on PyTorch, reproduced like :func:`reproduced`."""
    return reproduce(bakes["image-pytorch"], tmp_path_factory.mktemp("reproduced-image-pytorch"))


@pytest.fixture(scope="session")
def reproduced_image_tensorflow(
    bakes: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Project:
    """The image-classification project on TensorFlow, reproduced like :func:`reproduced`."""
    root = tmp_path_factory.mktemp("reproduced-image-tensorflow")
    return reproduce(bakes["image-tensorflow"], root)


@pytest.fixture(scope="session")
def reproduced_rllib(bakes: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The reinforcement-learning project (RLlib), reproduced like :func:`reproduced`."""
    return reproduce(bakes["reinforcement-learning"], tmp_path_factory.mktemp("reproduced-rllib"))


def reproduce(baked: Path, root: Path) -> Project:
    project = install(fresh(baked, root), root / "venv")
    project.dvc("repro")
    project.run("git", "add", "-A")
    project.run("git", "commit", "-qm", "validated model")
    return project
