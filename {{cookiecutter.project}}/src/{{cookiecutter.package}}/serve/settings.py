"""Serving settings, from ``SERVE_*`` environment variables (container-friendly)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServeSettings(BaseSettings):
    """How the prediction server runs; every field is ``SERVE_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="SERVE_", extra="forbid")

    model_dir: Path = Path("models/serving")
    # The model's name on the Open Inference Protocol routes (/v2/models/<name>/infer).
    model_name: str = Field(
        default="{{ cookiecutter.project }}",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_batch_rows: int = Field(default=1000, ge=1)
    # None: sized to the schema (the largest well-formed request of max_batch_rows rows).
    max_body_bytes: int | None = Field(default=None, ge=1024)
    # Seconds a client may take to send a request's headers, then its body; then a 408.
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=10.0, gt=0)
    # Predictions in progress (body read, validation, inference) before new ones get 503.
    max_in_flight: int = Field(default=64, ge=1)
    # Seconds in-flight requests get to finish after SIGTERM before connections are closed.
    drain_seconds: int = Field(default=20, ge=0)
    log_level: str = "info"
    git_sha: str = "unknown"
    mlflow_run_id: str = "unknown"
