"""Training curves: metrics per epoch, to MLflow and to TensorBoard event files.

The event file is written here rather than with TensorBoard's ``SummaryWriter``, whose file
name and records carry the host, the process id and the clock: each record's wall time is
its epoch, so the same training writes the same bytes and ``dvc repro`` stays a no-op.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.record_writer import RecordWriter

EVENT_FILE = "events.out.tfevents.train"


def log(curves: list[dict[str, float]], folder: Path) -> None:
    """Log each epoch's metrics to the active MLflow run and to ``folder`` for TensorBoard."""
    for epoch, metrics in enumerate(curves, start=1):
        mlflow.log_metrics(metrics, step=epoch)
    with (folder / EVENT_FILE).open("wb") as stream:
        records = RecordWriter(stream)
        records.write(Event(wall_time=0, file_version="brain.Event:2").SerializeToString())
        for epoch, metrics in enumerate(curves, start=1):
            values = [Summary.Value(tag=tag, simple_value=value) for tag, value in metrics.items()]
            event = Event(wall_time=epoch, step=epoch, summary=Summary(value=values))
            records.write(event.SerializeToString())
