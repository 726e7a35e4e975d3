"""Contender in the serving benchmark: a FastAPI app over the same onnxruntime model.

Written the way FastAPI's documentation shows an endpoint (``async def``, a pydantic model per
row): what most teams write first. The benchmark shows what the generated server gains over it.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, create_model

# The benchmark names the generated project's package; this app serves its bundle.
OnnxModel = importlib.import_module(f"{os.environ['BENCH_PACKAGE']}.serve.model").OnnxModel
model = OnnxModel.load(Path(os.environ.get("SERVE_MODEL_DIR", "models/serving")))
fields: dict[str, Any] = {
    name: (str if column.type == "category" else float, ...)
    for name, column in model.schema.columns.items()
}
Row = create_model("Row", **fields)


class PredictRequest(BaseModel):
    """A batch of rows."""

    rows: list[Row]  # type: ignore[valid-type]


app = FastAPI()


@app.get("/ready")
async def ready() -> dict[str, str]:
    """Always ready: the model loads at import."""
    return {"status": "ready"}


@app.post("/predict")
async def predict(request: PredictRequest) -> dict[str, Any]:
    """Predict a batch."""
    rows = [row.model_dump() for row in request.rows]
    return {"predictions": model.predict_rows(rows).to_json(model.classes)}
