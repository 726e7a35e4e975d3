"""Serving settings, from ``SERVE_*`` environment variables (container-friendly)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServeSettings(BaseSettings):
    """How the prediction server runs; every field is ``SERVE_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="SERVE_", extra="forbid")

    model_dir: Path = Path("models/serving")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_batch_rows: int = Field(default=1000, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Seconds in-flight requests get to finish after SIGTERM before connections are closed.
    drain_seconds: int = Field(default=20, ge=0)
    log_level: str = "info"
    git_sha: str = "unknown"
    mlflow_run_id: str = "unknown"
