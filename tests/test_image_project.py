"""Image classification end to end: a pretrained backbone fine-tuned through DVC and the gates.

One reproduced project per framework (``reproduced_image_<framework>``) serves the read-only
tests; the tests that change data work on a fresh copy. Its serving image is built in
test_container.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from .baking import Project, fresh, install
from .test_pipeline import (
    CURVES,
    PASSED_WITHOUT_GROUPS,
    forced_rerun_elsewhere_writes_the_same_lock,
    gate_status,
    params_of,
    verdict,
)

pytestmark = pytest.mark.e2e

STAGES = ["ingest", "prepare", "pretrain", "train", "evaluate", "export", "validate"]
GENERATED_TESTS = 28  # tests/test_images.py 20 + tests/test_dvc_dependencies.py 8
RUNS = """
import json, mlflow
from pathlib import Path
mlflow.set_tracking_uri(f"sqlite:///{Path('mlflow/mlflow.db').resolve()}")
runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
print(json.dumps({
    run.info.run_id: {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
    for run in runs
}))
"""


@pytest.fixture(params=["pytorch", "tensorflow"])
def reproduced_image(request: pytest.FixtureRequest) -> Project:
    return request.getfixturevalue(f"reproduced_image_{request.param}")


def test_fine_tuning_passes_the_gates_and_a_forced_rerun_writes_the_same_lock(
    reproduced_image: Project, tmp_path: Path
) -> None:
    project = reproduced_image
    metrics = json.loads((project.root / "metrics/metrics.json").read_text())
    for name, bound in params_of(project)["validate"]["thresholds"].items():
        assert metrics[name] >= bound["min"], name
    assert gate_status(project) == PASSED_WITHOUT_GROUPS
    parity = json.loads((project.root / "metrics/parity.json").read_text())
    assert parity == {"label_agreement": 1.0, "max_abs_diff": parity["max_abs_diff"], "rows": 450}
    assert parity["max_abs_diff"] <= 1e-4
    assert "Data and pipelines are up to date." in project.dvc("repro").stdout

    forced_rerun_elsewhere_writes_the_same_lock(project, tmp_path, STAGES)


def test_the_backbones_lineage_and_the_curves_reach_mlflow(reproduced_image: Project) -> None:
    """Train's run names the checkpoint it fine-tuned (hash, path) and the run pretraining it."""
    project = reproduced_image
    runs = json.loads(project.run(project.python, "-c", RUNS).stdout)
    [pretrained] = [run for run, tags in runs.items() if tags.get("stage") == "pretrain"]
    [checkpoint] = (project.root / "models/backbone").iterdir()
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert runs[pretrained]["backbone.sha256"] == digest
    trained = runs[(project.root / "mlflow/last_run_id").read_text().strip()]
    assert trained["backbone.sha256"] == digest
    assert trained["backbone.run_id"] == pretrained
    assert trained["backbone.path"] == "models/backbone"
    logged = json.loads(project.run(project.python, "-c", CURVES).stdout)
    assert set(logged["tensorboard"]) == {"train_loss", "val_loss", "val_accuracy"}
    for tag, points in logged["tensorboard"].items():
        assert [step for step, _ in points] == list(range(1, len(points) + 1))
        values = [value for _, value in logged["mlflow"][tag]]
        assert values == pytest.approx([value for _, value in points], rel=1e-6), tag


def test_the_generated_tests_and_lint_pass(reproduced_image: Project, tmp_path: Path) -> None:
    project = install(fresh(reproduced_image.root, tmp_path / "out"), tmp_path / "venv")
    project.run("make", "lint")
    assert project.assert_own_tests_pass() == GENERATED_TESTS


SHUFFLE = """
import numpy as np
from {package}.images import Images
from pathlib import Path
split = Path("data/prepared/train.npz")
images = Images.read(split)
labels = np.random.default_rng(0).permutation(images.labels)
Images(images.pixels, labels, images.files).write(split)
"""


def test_a_model_fine_tuned_on_shuffled_labels_is_rejected_by_the_gates(
    reproduced_image: Project, tmp_path: Path
) -> None:
    project = install(fresh(reproduced_image.root, tmp_path / "out"), tmp_path / "venv")
    project.run(project.python, "-c", SHUFFLE.format(package=project.package))
    for stage in ("train", "evaluate", "export"):
        project.cli(stage)
    result = project.cli("validate", check=False)
    assert result.returncode == 1
    assert "model rejected by gate(s): thresholds (accuracy, f1)" in result.stderr
    assert gate_status(project) == {**PASSED_WITHOUT_GROUPS, "thresholds": "failed"}
    checks = next(g for g in verdict(project)["gates"] if g["name"] == "thresholds")["checks"]
    assert {check["name"]: check["value"] < 0.3 for check in checks} == {
        "accuracy": True,
        "f1": True,
    }
