"""Dynamic batching: requests that arrive together share one onnxruntime call.

onnxruntime's per-call overhead dwarfs the arithmetic of a small model, so under concurrency
one call for N requests costs little more than one call for one. Requests wait in a queue and
go out one batch (up to ``max_rows`` rows) at a time. A small batch runs right on the event
loop, which costs less than handing it to a thread (single-row throughput depends on it); a
large one runs on a dedicated inference thread while the loop keeps answering (``/health``
stays fast under heavy load), and whatever arrives meanwhile becomes the next batch. No timer
is involved: a lone request starts at once.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from .model import Feeds, OnnxModel, Prediction, concatenate, rows_of

# Batches up to this many rows are predicted on the event loop: tens of microseconds for a
# tabular model, less than a thread hand-off. Larger ones go to the inference thread.
INLINE_ROWS = 64
Waiting = list[tuple[Feeds, int, "asyncio.Future[Prediction]"]]


class Batcher:
    """Collects pending requests and predicts them together, one batch at a time."""

    def __init__(self, model: OnnxModel, max_rows: int) -> None:
        """Batch for ``model``; a batch stops growing at ``max_rows`` rows."""
        self.model = model
        self.max_rows = max_rows
        self._pending: Waiting = []
        self._running = False
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")

    async def predict(self, feeds: Feeds) -> Prediction:
        """Predict the rows of ``feeds`` (one request's) as part of the next batch."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Prediction] = loop.create_future()
        if not self._pending and not self._running:
            loop.call_soon(self._start)  # after the requests already received this iteration
        self._pending.append((feeds, rows_of(feeds), future))
        return await future

    def _start(self) -> None:
        if self._running or not self._pending:
            return
        batch, size = [], 0
        while self._pending and (not batch or size + self._pending[0][1] <= self.max_rows):
            waiting = self._pending.pop(0)
            batch.append(waiting)
            size += waiting[1]
        feeds = concatenate([part for part, _, _ in batch])
        loop = asyncio.get_running_loop()
        self._running = True
        if size <= INLINE_ROWS:
            done: asyncio.Future[Prediction] = loop.create_future()
            try:
                done.set_result(self.model.predict(feeds))
            except Exception as error:  # noqa: BLE001 - every waiting request must learn of it
                done.set_exception(error)
            self._finish(batch, done)
            return
        running = loop.run_in_executor(self._thread, self.model.predict, feeds)
        running.add_done_callback(lambda done: self._finish(batch, done))

    def _finish(self, batch: Waiting, done: asyncio.Future[Prediction]) -> None:
        self._running = False
        error = done.exception()
        start = 0
        for _, rows, future in batch:
            if future.cancelled():  # the client went away
                start += rows
                continue
            if error is not None:
                future.set_exception(error)  # every waiting request must learn of it
                continue
            future.set_result(done.result().slice(start, start + rows))
            start += rows
        self._start()

    def close(self) -> None:
        """Stop the inference thread once the batches in progress are done."""
        self._thread.shutdown(wait=True)
