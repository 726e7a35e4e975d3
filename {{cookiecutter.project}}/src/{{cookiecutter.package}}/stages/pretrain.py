"""``pretrain``: train the backbone on the source task, for ``train`` to fine-tune.

The source task is the training split's images of ``pretrain.classes``. The backbone's
checkpoint goes to ``models/backbone``; its MLflow run is tagged with the checkpoint's
SHA-256, by which ``train`` records where its backbone came from.
"""

from __future__ import annotations

import logging

import mlflow

from .. import frameworks
from ..config import Paths, StageError, validated
from ..files import atomic_dir, sha256
from ..images import ImageParams, Images
from ..schema import Schema
from ..tracking import pipeline_run

log = logging.getLogger(__name__)
BACKBONE_TAG = "backbone.sha256"


def run(params: ImageParams, paths: Paths) -> None:
    """Pretrain, save the backbone, log its params, curves and hash to a run of its own."""
    framework = frameworks.load()
    schema = Schema.load(paths.schema)
    unknown = sorted(set(params.pretrain.classes) - set(schema.target.classes))
    if unknown:
        raise StageError(
            f"params.yaml: pretrain.classes: {unknown} are not classes of data/schema.yaml "
            f"({schema.target.classes})"
        )
    pretrain_params = validated(
        framework.PretrainParams, params.pretrain.train, "params.yaml: pretrain.train"
    )
    source = Images.read(paths.train).of_classes(params.pretrain.classes)
    backbone = framework.pretrain(source, schema, pretrain_params, params.seed)
    with atomic_dir(paths.backbone) as folder:
        framework.save_backbone(backbone, folder)
    digest = sha256(paths.backbone / framework.BACKBONE_FILE)
    with pipeline_run(paths, new=True) as active:
        mlflow.set_tags({"stage": "pretrain", "framework": framework.NAME, BACKBONE_TAG: digest})
        mlflow.log_params({"seed": params.seed, "classes": params.pretrain.classes})
        mlflow.log_params(pretrain_params.model_dump())
        for epoch, metrics in enumerate(backbone.curves, start=1):
            mlflow.log_metrics({f"pretrain.{k}": v for k, v in metrics.items()}, step=epoch)
        log.info(
            "pretrained the backbone on %d images of classes %s, backbone %s, MLflow run %s",
            len(source),
            params.pretrain.classes,
            digest[:12],
            active.info.run_id,
        )
