"""Dynamic batching: requests that arrive in the same event-loop iteration share one ORT call.

onnxruntime's per-call overhead dwarfs the arithmetic of a small model, so under concurrency
one call for N requests costs little more than one call for one. No timer is involved: a
batch closes when the loop has processed the requests already received, so a lone request
is never delayed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from .model import OnnxModel, Prediction

Rows = Sequence[Mapping[str, Any]]


class Batcher:
    """Collects pending requests and predicts them together on the next loop iteration."""

    def __init__(self, model: OnnxModel, max_rows: int) -> None:
        """Batch for ``model``; a batch stops growing at ``max_rows`` rows."""
        self.model = model
        self.max_rows = max_rows
        self._pending: list[tuple[Rows, asyncio.Future[Prediction]]] = []
        self._pending_rows = 0

    async def predict(self, rows: Rows) -> Prediction:
        """Predict ``rows`` as part of the current batch."""
        loop = asyncio.get_running_loop()
        if self._pending_rows + len(rows) > self.max_rows:
            self._flush()
        future: asyncio.Future[Prediction] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((rows, future))
        self._pending_rows += len(rows)
        return await future

    def _flush(self) -> None:
        pending, self._pending, self._pending_rows = self._pending, [], 0
        if not pending:
            return
        try:
            prediction = self.model.predict_rows([row for rows, _ in pending for row in rows])
        except Exception as error:  # noqa: BLE001 - every waiting request must learn of it
            for _, future in pending:
                future.set_exception(error)
            return
        start = 0
        for rows, future in pending:
            end = start + len(rows)
            future.set_result(prediction.slice(start, end))
            start = end
