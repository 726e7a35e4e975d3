"""``train``: fine-tune a new head on the backbone and start the pipeline's MLflow run.

The backbone is ``train.backbone``: the ``pretrain`` stage's by default, or a checkpoint of
your own. The run records its lineage: the checkpoint's SHA-256 and path, and the MLflow run
that pretrained it when this store has one. Per-epoch curves go to MLflow and to ``logs/``
(``make tensorboard`` shows them).
"""

from __future__ import annotations

import logging

import mlflow

from .. import curves, frameworks
from ..config import Paths, StageError, validated
from ..files import atomic_dir, sha256
from ..images import ImageParams, Images
from ..schema import Schema
from ..tracking import pipeline_run
from .pretrain import BACKBONE_TAG

log = logging.getLogger(__name__)


def run(params: ImageParams, paths: Paths) -> None:
    """Fine-tune, save, and log params, lineage, curves and training accuracy."""
    framework = frameworks.load()
    train_params = validated(framework.Params, params.train, "params.yaml: train")
    checkpoint = paths.root / train_params.backbone
    if checkpoint.is_dir():
        checkpoint = checkpoint / framework.BACKBONE_FILE
    if not checkpoint.is_file():
        raise StageError(
            f"params.yaml: train.backbone: {train_params.backbone} holds no backbone checkpoint "
            f"({framework.BACKBONE_FILE}, written by the pretrain stage)"
        )
    schema = Schema.load(paths.schema)
    images = Images.read(paths.train)
    model = framework.fit(
        images, schema, train_params, framework.load_backbone(checkpoint), params.seed
    )
    with atomic_dir(paths.model) as folder:
        framework.save(model, folder)
    predicted = schema.target.labels(framework.predict_proba(model, images.pixels))
    accuracy = float((predicted == images.labels).mean())
    digest = sha256(checkpoint)
    with pipeline_run(paths, new=True) as active:
        pretrained = mlflow.search_runs(
            filter_string=f"tags.`{BACKBONE_TAG}` = '{digest}' and tags.stage = 'pretrain'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
            output_format="list",
        )
        mlflow.log_params({"seed": params.seed, "test_size": params.prepare.test_size})
        mlflow.log_params(train_params.model_dump(mode="json"))
        mlflow.set_tags(
            {
                "data.train_sha256": sha256(paths.train),
                "framework": framework.NAME,
                BACKBONE_TAG: digest,
                "backbone.path": train_params.backbone.as_posix(),
                "backbone.run_id": pretrained[0].info.run_id if pretrained else "unknown",
            }
        )
        mlflow.log_metric("train_accuracy", accuracy)
        with atomic_dir(paths.logs) as folder:
            curves.log(framework.curves(model), folder)
        log.info(
            "fine-tuned on %d images (trained: %s), train accuracy %.4f, MLflow run %s",
            len(images),
            ", ".join(framework.trainable(model)),
            accuracy,
            active.info.run_id,
        )
