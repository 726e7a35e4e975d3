"""``export``: the classifier as the ONNX serving bundle, and its parity on the test split.

Requests carry each image as nested lists of pixel values in the declared shape; the
bundle's example holds the first test images (see :mod:`..publish`).
"""

from __future__ import annotations

from .. import frameworks
from ..config import Paths
from ..images import ImageParams, Images, image_column
from ..publish import EXAMPLE_ROWS, parity, publish
from ..schema import Schema
from ..serve.model import OnnxModel


def run(params: ImageParams, paths: Paths) -> None:
    """Write the serving bundle and the parity metrics; the validate stage gates parity."""
    framework = frameworks.load()
    schema = Schema.load(paths.schema)
    native = framework.load(paths.model)
    onnx_bytes = framework.to_onnx(native, schema)
    model = OnnxModel(onnx_bytes, {"schema": schema.model_dump(mode="json"),
                                   "framework": framework.NAME})  # fmt: skip
    test = Images.read(paths.test)
    result = parity(model, framework.predict_proba(native, test.pixels), test.columns(schema))
    name, column = image_column(schema)
    rows = [
        {name: pixels.reshape(column.request_shape).tolist()}
        for pixels in test.pixels[:EXAMPLE_ROWS]
    ]
    publish(paths, model, onnx_bytes, rows, result)
