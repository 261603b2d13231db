"""Knobs of the serving stage (env prefix ``DATAPLATFORM_SERVE_``), next to the platform `Settings`.

Kept apart from `dataplatform.config.Settings` so the serve stage owns its own limits; the lead may
nest it there later (``Settings.serve``) without changing any field name.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "commit-classifier"
SERVED_MODELS = ("commit-classifier", "corrective-classifier")


class ServeSettings(BaseSettings):
    """Serving limits, routing shares and background-task periods."""

    model_config = SettingsConfigDict(
        env_prefix="DATAPLATFORM_SERVE_", extra="ignore", case_sensitive=False
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # Registered models this service answers for (those with a `production` version are served;
    # the others answer 503 until one is promoted); the first is the default of `model`.
    models: list[str] = Field(default_factory=lambda: list(SERVED_MODELS), min_length=1)
    # Seconds between polls of the `production`/`staging` aliases; 0 disables polling.
    reload_interval_s: float = Field(default=30.0, ge=0)
    # Share of requests answered by `staging` when a staging version exists (design: 10 %).
    canary_share: float = Field(default=0.1, ge=0, le=1)
    # `staging` also scores requests answered by `production`; logged, never returned.
    shadow: bool = True
    # Share of requests whose predictions go to monitoring.prediction_log.
    prediction_log_sample_rate: float = Field(default=0.1, ge=0, le=1)
    prediction_log_queue_size: int = Field(default=10_000, ge=1)
    prediction_log_flush_interval_s: float = Field(default=1.0, gt=0)
    prediction_log_batch_rows: int = Field(default=500, ge=1)
    # Bad-input limits (422 / 413).
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_items: int = Field(default=256, ge=1)
    max_message_chars: int = Field(default=65_536, ge=1)
    # Most rows scored in one batch by the scoring thread (concurrent requests are coalesced).
    max_batch_rows: int = Field(default=512, ge=1)
    # Seconds a /ready or /api/v1/status dependency check is reused (probes must stay cheap).
    dependency_check_ttl_s: float = Field(default=5.0, ge=0)
