"""Dynamic batching: one ORT call per loop iteration, capped, and no rows mixed up."""

from __future__ import annotations

import asyncio
import math

import pytest

from {{ cookiecutter.package }}.config import Paths
from {{ cookiecutter.package }}.serve.batching import Batcher
from {{ cookiecutter.package }}.serve.model import Feeds, OnnxModel, rows_of


@pytest.fixture
def counted(paths: Paths) -> tuple[OnnxModel, list[int]]:
    """The exported model, recording the size of every batch it predicts."""
    model = OnnxModel.load(paths.bundle)
    sizes: list[int] = []
    predict = model.predict

    def recording(feeds: Feeds):
        sizes.append(rows_of(feeds))
        return predict(feeds)

    model.predict = recording  # type: ignore[method-assign]
    return model, sizes


async def predict_each(batcher: Batcher, rows: list[dict]) -> list:
    feeds = [batcher.model.feeds_from_rows([row]) for row in rows]
    return await asyncio.gather(*(batcher.predict(one) for one in feeds))


def test_concurrent_requests_share_one_call_and_get_their_own_rows(counted, rows) -> None:
    model, sizes = counted
    results = asyncio.run(predict_each(Batcher(model, max_rows=100), rows))
    assert sizes == [len(rows)]
    expected = OnnxModel.predict_rows(model, rows)
    for index, result in enumerate(results):
        assert result.labels.tolist() == [expected.labels[index]]
        assert math.isclose(
            result.probabilities[0][1], expected.probabilities[index][1], abs_tol=1e-7
        )


def test_batches_never_exceed_the_row_cap(counted, rows) -> None:
    model, sizes = counted
    asyncio.run(predict_each(Batcher(model, max_rows=5), rows))
    assert sizes == [5, 5, 2]


def test_a_lone_request_is_predicted_alone(counted, rows) -> None:
    model, sizes = counted
    result = asyncio.run(Batcher(model, max_rows=100).predict(model.feeds_from_rows(rows[:2])))
    assert sizes == [2]
    assert len(result.labels) == 2


def test_a_failed_batch_fails_every_waiting_request(counted, rows) -> None:
    model, _ = counted

    def broken(feeds: Feeds):
        raise RuntimeError("onnxruntime failed")

    model.predict = broken  # type: ignore[method-assign]

    async def run() -> list:
        batcher = Batcher(model, max_rows=100)
        feeds = [model.feeds_from_rows([row]) for row in rows[:3]]
        return await asyncio.gather(
            *(batcher.predict(one) for one in feeds), return_exceptions=True
        )

    outcomes = asyncio.run(run())
    assert [str(outcome) for outcome in outcomes] == ["onnxruntime failed"] * 3
