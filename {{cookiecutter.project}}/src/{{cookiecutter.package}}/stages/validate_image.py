"""``validate``: apply the gates to the image classifier; write the verdict, report, model card.

The thresholds and the baseline judge the test metrics; a baseline model is scored on this
run's test split. Exits non-zero when a gate fails.
"""

from __future__ import annotations

import json

from .. import baseline
from ..config import Paths
from ..files import read_json
from ..images import ImageParams, Images, image_column
from ..metrics import classification_metrics
from ..publish import card_header, publish_verdict, verdict_line
from ..report import render
from ..schema import Schema
from ..serve.bundle import METADATA_FILE
from ..serve.model import OnnxModel
from ..verdict import Verdict

# Gates of the tabular task that cannot apply to an image classifier, and why.
INAPPLICABLE = {
    "fairness": "the images declare no sensitive feature to compare groups of",
    "encrypted": "a convolutional network is not linear; encrypted inference needs a linear model",
    "privacy": "the image task trains without differential privacy",
}


def model_card(params: ImageParams, schema: Schema, framework: str, verdict: Verdict) -> str:
    """What the classifier is, how it was trained and judged, and what was not checked."""
    name, column = image_column(schema)
    metrics = verdict.metrics
    lines = [
        *card_header(
            f"{framework}: a convolutional network, its backbone pretrained on classes "
            f"{params.pretrain.classes} and fine-tuned with a new head; exported to ONNX and "
            "served by onnxruntime.",
            verdict,
        ),
        f"- Input `{name}`: {column.height}x{column.width} pixels, {column.channels} "
        f"channel(s), values {column.min:g} to {column.max:g}; classes {schema.target.classes}.",
        f"- Training parameters (seed {params.seed}): `{json.dumps(params.train, sort_keys=True)}`",
        "",
        "## Evaluation",
        "",
        f"- Test split ({params.prepare.test_size:g} of the images, stratified): accuracy "
        f"{metrics['accuracy']:g}, macro F1 {metrics['f1']:g}, log loss {metrics['log_loss']:g}.",
        verdict_line(verdict),
        "",
        "## Limitations",
        "",
        "- Judged on images like the training images: other sizes, crops or cameras are not.",
        *[f"- Not checked: {gate} ({reason})." for gate, reason in INAPPLICABLE.items()],
    ]
    return "\n".join(lines) + "\n"


def run(params: ImageParams, paths: Paths) -> None:
    """Judge the exported classifier; raise :class:`StageError` naming the failed gates."""
    schema = Schema.load(paths.schema)
    test = Images.read(paths.test)
    columns = test.columns(schema)

    def score(model: OnnxModel) -> dict[str, float]:
        probabilities = model.predict_columns(columns).probabilities
        return classification_metrics(test.labels, probabilities, schema)

    verdict = baseline.judged(paths, params.validate_.gates(), score, INAPPLICABLE)
    framework = read_json(paths.bundle / METADATA_FILE)["framework"]
    card = model_card(params, schema, framework, verdict)
    publish_verdict(paths, verdict, render(verdict), card)
