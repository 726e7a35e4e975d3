"""The image task's pieces: the image folders, transfer learning, the ONNX export, the server.

A short pretraining and fine-tuning on the demo digits is shared by the tests; the full
pipeline is ``dvc repro``. The server is the project's own, started as the serving image
starts it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from {{ cookiecutter.package }} import frameworks
from {{ cookiecutter.package }}.config import Paths, StageError, validated
from {{ cookiecutter.package }}.files import read_json
from {{ cookiecutter.package }}.gates import decide
from {{ cookiecutter.package }}.images import ImageParams, Images, read_folder, write_demo
from {{ cookiecutter.package }}.publish import parity, publish
from {{ cookiecutter.package }}.schema import Schema
from {{ cookiecutter.package }}.serve.bundle import EXAMPLE_FILE
from {{ cookiecutter.package }}.serve.model import OnnxModel
from {{ cookiecutter.package }}.serve.settings import ServeSettings
from {{ cookiecutter.package }}.smoke import free_port, request, smoke_test, wait_ready
from {{ cookiecutter.package }}.stages.validate_image import INAPPLICABLE
from {{ cookiecutter.package }}.verdict import Baseline

PROJECT = Path(__file__).resolve().parents[1]
FRAMEWORK = frameworks.load()
SHORT = {"max_epochs": 4, "patience": 2, "device": "cpu"}  # a few epochs: mechanics, not skill


@pytest.fixture(scope="session")
def params() -> ImageParams:
    return ImageParams.load(PROJECT / "params.yaml")


@pytest.fixture(scope="session")
def schema() -> Schema:
    return Schema.load(PROJECT / "data/schema.yaml")


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    write_demo(folder)
    return folder


@pytest.fixture(scope="session")
def images(demo: Path, schema: Schema) -> Images:
    return read_folder(demo, schema)


@pytest.fixture(scope="session")
def backbone_file(
    tmp_path_factory: pytest.TempPathFactory, images: Images, schema: Schema, params: ImageParams
) -> Path:
    """A backbone pretrained for a few epochs on the source classes, saved as pretrain does."""
    pretrain = validated(FRAMEWORK.PretrainParams, {**params.pretrain.train, **SHORT}, "test")
    source = images.of_classes(params.pretrain.classes)
    folder = tmp_path_factory.mktemp("backbone")
    FRAMEWORK.save_backbone(FRAMEWORK.pretrain(source, schema, pretrain, seed=3), folder)
    return folder / FRAMEWORK.BACKBONE_FILE


def fine_tuned(
    backbone_file: Path, images: Images, schema: Schema, params: ImageParams, **train: Any
) -> tuple[Any, dict[str, np.ndarray]]:
    """A model fine-tuned on ``images``, and its backbone's state before fine-tuning."""
    backbone = FRAMEWORK.load_backbone(backbone_file)
    before = FRAMEWORK.backbone_state(backbone)
    train_params = validated(FRAMEWORK.Params, {**params.train, **SHORT, **train}, "test")
    return FRAMEWORK.fit(images, schema, train_params, backbone, seed=5), before


@pytest.fixture(scope="session")
def model(backbone_file: Path, images: Images, schema: Schema, params: ImageParams) -> Any:
    return fine_tuned(backbone_file, images, schema, params)[0]


def test_the_shipped_params_load_with_their_framework(params: ImageParams) -> None:
    validated(FRAMEWORK.PretrainParams, params.pretrain.train, "params.yaml: pretrain.train")
    train = validated(FRAMEWORK.Params, params.train, "params.yaml: train")
    assert train.backbone == Path("models/backbone")
    assert (train.unfreeze, train.from_scratch) == (0, False)


def test_the_demo_is_an_image_folder_with_every_digit(demo: Path, images: Images) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    assert sorted(path.name for path in demo.iterdir()) == [str(digit) for digit in range(10)]
    assert images.pixels.shape == (1797, 8, 8, 1)
    assert images.pixels.dtype == np.uint8
    assert np.bincount(images.labels).tolist() == np.bincount(digits.target).tolist()
    first = np.asarray(Image.open(demo / str(digits.target[0]) / "0000.png"))
    assert np.array_equal(first, np.rint(digits.images[0] * 255 / 16))


def _write(folder: Path, name: str, content: Image.Image | bytes) -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        (folder / name).write_bytes(content)
    else:
        content.save(folder / name)


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("3/broken.png", b"not an image", "3/broken.png: not a readable image"),
        ("3/wide.png", Image.new("L", (9, 8)), "3/wide.png: 9x8 L image, expected 8x8"),
        ("3/colour.png", Image.new("RGB", (8, 8)), "3/colour.png: 8x8 RGB image, expected 8x8"),
        ("cats/0.png", Image.new("L", (8, 8)), "cats: a folder of no declared class"),
    ],
)
def test_a_bad_image_is_refused_naming_the_file(
    tmp_path: Path, schema: Schema, name: str, content: Image.Image | bytes, says: str
) -> None:
    _write(tmp_path, "3/good.png", Image.new("L", (8, 8)))
    _write(tmp_path, name, content)
    with pytest.raises(StageError) as refused:
        read_folder(tmp_path, schema)
    [problem] = str(refused.value).splitlines()[1:]
    assert says in problem


def test_a_split_is_written_byte_for_byte_the_same(tmp_path: Path, images: Images) -> None:
    first, second = tmp_path / "first.npz", tmp_path / "second.npz"
    images.write(first)
    images.write(second)
    assert first.read_bytes() == second.read_bytes()
    again = Images.read(first)
    assert np.array_equal(again.pixels, images.pixels)
    assert again.files.tolist() == images.files.tolist()


def _blocks(state: dict[str, np.ndarray], changed: bool, than: dict[str, np.ndarray]) -> set[str]:
    """The blocks (the first part of each name) whose weights did or did not change."""
    return {
        name.split(".")[0]
        for name, value in state.items()
        if changed != np.array_equal(value, than[name])
    }


def test_fine_tuning_trains_the_head_only_and_leaves_the_backbone_bit_identical(
    backbone_file: Path, images: Images, schema: Schema, params: ImageParams
) -> None:
    """Weights and batch-normalization statistics of the frozen backbone do not move."""
    model, before = fine_tuned(backbone_file, images, schema, params)
    after = FRAMEWORK.backbone_state(model.backbone)
    assert after.keys() == before.keys()
    assert _blocks(after, changed=True, than=before) == set()
    assert any("running" in name or "moving" in name for name in after)  # statistics compared
    assert {name.split(".")[0] for name in FRAMEWORK.trainable(model)} == {"head"}


def test_unfreezing_one_block_trains_the_last_block_and_keeps_the_first(
    backbone_file: Path, images: Images, schema: Schema, params: ImageParams
) -> None:
    model, before = fine_tuned(backbone_file, images, schema, params, unfreeze=1)
    after = FRAMEWORK.backbone_state(model.backbone)
    assert _blocks(after, changed=True, than=before) == {"1"}
    assert _blocks(after, changed=False, than=before) == {"0"}
    trained = {name.split(".")[0] for name in FRAMEWORK.trainable(model)}
    assert trained == {"head", "backbone"}


def test_training_from_scratch_trains_every_block(
    backbone_file: Path, images: Images, schema: Schema, params: ImageParams
) -> None:
    model, before = fine_tuned(backbone_file, images, schema, params, from_scratch=True)
    after = FRAMEWORK.backbone_state(model.backbone)
    assert _blocks(after, changed=False, than=before) == set()
    assert len(model.curves) >= 1


def test_a_backbone_for_other_images_is_refused(
    backbone_file: Path, images: Images, params: ImageParams
) -> None:
    larger = Schema.model_validate(
        {
            "target": {"name": "digit", "classes": list(range(10))},
            "columns": {"image": {"type": "image", "height": 16, "width": 16}},
        }
    )
    with pytest.raises(StageError, match=r"train.backbone: reads images of shape \[8, 8, 1\]"):
        fine_tuned(backbone_file, images, larger, params)


def test_curves_come_from_every_epoch_of_fine_tuning(model: Any) -> None:
    curves = FRAMEWORK.curves(model)
    assert 1 <= len(curves) <= SHORT["max_epochs"]
    assert set(curves[0]) == {"train_loss", "val_loss", "val_accuracy"}


@pytest.fixture(scope="session")
def bundle(
    tmp_path_factory: pytest.TempPathFactory, model: Any, images: Images, schema: Schema
) -> Paths:
    """The classifier saved, loaded back and exported as export does it."""
    folder = tmp_path_factory.mktemp("native")
    FRAMEWORK.save(model, folder)
    loaded = FRAMEWORK.load(folder)
    assert np.array_equal(
        FRAMEWORK.predict_proba(loaded, images.pixels[:50]),
        FRAMEWORK.predict_proba(model, images.pixels[:50]),
    )
    paths = Paths().at(tmp_path_factory.mktemp("project"))
    onnx_bytes = FRAMEWORK.to_onnx(loaded, schema)
    served = OnnxModel(onnx_bytes, {"schema": schema.model_dump(mode="json"), "framework": "x"})
    native = FRAMEWORK.predict_proba(loaded, images.pixels)
    rows = [{"image": pixels[..., 0].tolist()} for pixels in images.pixels[:3]]
    publish(paths, served, onnx_bytes, rows, parity(served, native, images.columns(schema)))
    return paths


def test_the_onnx_model_reproduces_the_native_one(bundle: Paths, images: Images) -> None:
    result = read_json(bundle.parity)
    assert result["label_agreement"] == 1.0
    assert result["max_abs_diff"] <= 1e-4
    assert result["rows"] == len(images)


def test_a_classifier_below_a_threshold_is_rejected(params: ImageParams) -> None:
    threshold = params.validate_.thresholds["accuracy"].min
    parity_ = {"max_abs_diff": 0.0, "label_agreement": 1.0, "rows": 10}
    for accuracy, passed in ((threshold - 0.01, False), (threshold, True)):
        verdict = decide(
            {"accuracy": accuracy, "f1": 1.0},
            {},
            parity_,
            params.validate_.gates(),
            Baseline("none"),
            inapplicable=INAPPLICABLE,
        )
        assert verdict.passed is passed
        assert [gate.name for gate in verdict.failed] == ([] if passed else ["thresholds"])
        statuses = {gate.name: gate.status for gate in verdict.gates}
        assert {name: statuses[name] for name in INAPPLICABLE} == dict.fromkeys(
            INAPPLICABLE, "not_applicable"
        )


@pytest.fixture(scope="module")
def server(bundle: Paths) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "SERVE_PORT": str(port), "SERVE_MODEL_DIR": str(bundle.bundle)}
    process = subprocess.Popen([sys.executable, "-m", "{{ cookiecutter.package }}.serve"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, 30)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_the_server_answers_pixel_arrays_with_the_networks_labels(
    server: str, bundle: Paths, model: Any, images: Images, schema: Schema
) -> None:
    name = ServeSettings.model_fields["model_name"].default
    smoke_test(server, bundle.bundle / EXAMPLE_FILE, name, 30)
    some = images.take(np.arange(0, len(images), 37))
    rows = [{"image": pixels[..., 0].tolist()} for pixels in some.pixels]
    answer = request(f"{server}/predict", {"rows": rows})
    assert answer.status == 200
    served = [prediction["label"] for prediction in answer.body["predictions"]]
    assert served == schema.target.labels(FRAMEWORK.predict_proba(model, some.pixels)).tolist()
    tensor = {"name": "image", "datatype": "FP32", "shape": [len(some), 8, 8, 1],
              "data": some.pixels.astype(float).ravel().tolist()}  # fmt: skip
    v2 = request(f"{server}/v2/models/{name}/infer", {"inputs": [tensor]})
    assert v2.status == 200
    assert v2.body["outputs"][0]["data"] == served


BLANK = [[0] * 8 for _ in range(8)]


@pytest.mark.parametrize(
    ("image", "where", "says"),
    [
        (BLANK[:7], [], "List should have at least 8 items"),
        ([*BLANK[:7], [0] * 9], [7], "List should have at most 8 items"),
        ([*BLANK[:7], [0] * 7 + [256]], [7, 7], "less than or equal to 255"),
        ([*BLANK[:7], [0] * 7 + [[0]]], [7, 7], "Input should be a valid number"),
    ],
)
def test_an_image_of_the_wrong_shape_or_range_gets_422_naming_the_pixel(
    server: str, image: list[Any], where: list[int], says: str
) -> None:
    answer = request(f"{server}/predict", {"rows": [{"image": image}]})
    assert answer.status == 422
    [problem] = answer.body["detail"]
    assert problem["loc"] == ["rows", 0, "image", *where]
    assert says in problem["msg"]


def test_an_open_inference_tensor_of_another_shape_gets_400_naming_the_expected_one(
    server: str,
) -> None:
    name = ServeSettings.model_fields["model_name"].default
    tensor = {"name": "image", "datatype": "FP32", "shape": [1, 8, 8], "data": [0.0] * 64}
    answer = request(f"{server}/v2/models/{name}/infer", {"inputs": [tensor]})
    assert answer.status == 400
    assert answer.body == {"error": "input 'image': shape [1, 8, 8], expected [rows, 8, 8, 1]"}
