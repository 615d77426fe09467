from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Settings every service reads; each service subclasses it to add its own.

    Everything comes from `OMS_*` environment variables (or a `.env` file in the
    working directory) and has a default that works for `make run`.
    """

    model_config = SettingsConfigDict(
        env_prefix="OMS_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str = "postgresql://postgres@127.0.0.1:5432/oms"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    jwt_secret: str = "dev-only-jwt-secret-change-me-in-production"
    host: str = "127.0.0.1"
    # Each service overrides this with its own variable (OMS_ORDER_PORT, ...).
    port: int = 8000
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    access_log: bool = True
    # Record and export OpenTelemetry spans (see oms_runtime.tracing); the trace id is
    # propagated and logged either way.
    otel_enabled: bool = False

    db_pool_size: int = 10
    # The longest a database connection may take to open or a statement to answer:
    # behind a network partition nothing fails by itself, so without it requests and
    # consumers would hang.
    db_timeout_seconds: float = Field(10.0, gt=0)
    # Larger request bodies are refused with 413 before they are read.
    max_body_bytes: int = 256 * 1024
    # Write requests per second (and burst) a customer may make; 0 disables.
    rate_limit_per_second: float = 10
    rate_limit_burst: int = 30
    # Messages the broker may have delivered and not yet seen acknowledged...
    prefetch_count: int = 32
    # ...of which at most this many are handled in one shared transaction
    # (see oms_runtime.messaging.consumer); 1 gives one transaction per message.
    consumer_batch_size: int = 16
    # Delays between attempts of a failing message; after the last one it is
    # dead-lettered. Comma separated seconds.
    retry_delays: Annotated[tuple[float, ...], NoDecode] = (1.0, 5.0, 30.0)
    # Set false when the relay runs as its own process (`python -m oms_<svc> relay`).
    relay_enabled: bool = True
    relay_batch_size: int = 200
    # Committed messages are handed to the relay of their process (or NOTIFY a
    # standalone one); the sweep every `relay_poll_interval` catches the rest, e.g.
    # rows left by a process that died, once they are `relay_grace_seconds` old.
    relay_poll_interval: float = 2.0
    relay_grace_seconds: float = 5.0
    inbox_retention_hours: int = 168

    @field_validator("retry_delays", mode="before")
    @classmethod
    def _parse_delays(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(float(part) for part in value.split(",") if part.strip())
        return value
