from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Public (it is in this repository): fine on a laptop, never on a network.
DEVELOPMENT_JWT_SECRET = "dev-only-jwt-secret-change-me-in-production"
# HS256 keys shorter than the hash are weak (RFC 7518 section 3.2).
MIN_SECRET_BYTES = 32


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class WeakSecrets(Exception):
    """A process about to listen beyond loopback with a development or short secret."""


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
    jwt_secret: str = DEVELOPMENT_JWT_SECRET
    # Longest lifetime (exp - iat) a token may claim; tokens without exp or iat are
    # refused. When set, tokens must carry this issuer / audience (oms-token mints them).
    jwt_max_lifetime_seconds: int = 24 * 3600
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    # Browser origins allowed to call the API (CORS), comma separated; none by default.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    host: str = "127.0.0.1"
    # Each service overrides this with its own variable (OMS_ORDER_PORT, ...).
    port: int = 8000
    # Both set: the API is served over HTTPS with this certificate (PEM, the chain
    # after the leaf) and its private key.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
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
    # A message that arrives alone waits this long for others to share its
    # transaction (0: never waits); see oms_runtime.messaging.consumer.
    consumer_linger_ms: float = Field(5.0, ge=0, le=1000)
    # `quorum`: the work, delay and dead-letter queues are quorum queues, replicated
    # over a RabbitMQ cluster (see oms_runtime.messaging.queues; an existing queue
    # changes type with `python -m oms_<service> migrate-queues`).
    queue_type: Literal["classic", "quorum"] = "classic"
    # Quorum only: deliveries of one message before the broker dead-letters it.
    queue_delivery_limit: int = Field(20, ge=2)
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
    # Objects allocated (net) between two young garbage collections. Python's 700
    # collects so often under load that a request's or a message's objects outlive
    # two collections, reach the oldest generation and make full collections (each
    # tens of ms over every object of the process) frequent: 11 % of the order
    # service's CPU at max rate, ~4 % with 20,000 (see README, Benchmarks). Since
    # units of work and gateway calls stopped forming reference cycles, the
    # services hardly collect at all under load; the threshold still spares the
    # odd cycle a library makes from reaching the oldest generation.
    gc_young_threshold: int = Field(20_000, ge=700)

    def secrets(self) -> dict[str, tuple[str, str]]:
        """The secrets this process uses: variable -> (value, development default)."""
        return {"OMS_JWT_SECRET": (self.jwt_secret, DEVELOPMENT_JWT_SECRET)}

    def refuse_weak_secrets(self, host: str) -> None:
        """Listening beyond loopback with a development or short secret would let
        anyone who read this repository mint admin tokens or sign carrier events."""
        if is_loopback(host):
            return
        weak = [
            f"{name} is the public development value"
            if value == default
            else f"{name} is shorter than {MIN_SECRET_BYTES} bytes"
            for name, (value, default) in self.secrets().items()
            if value == default or len(value.encode()) < MIN_SECRET_BYTES
        ]
        if weak:
            raise WeakSecrets(
                f"refusing to listen on {host}: {'; '.join(weak)}. Set a random secret of "
                f"at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -base64 48`), or "
                "listen on 127.0.0.1 for development."
            )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _tls_files_come_in_pairs(self) -> ServiceSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("set both OMS_TLS_CERT_FILE and OMS_TLS_KEY_FILE, or neither")
        return self

    @field_validator("retry_delays", mode="before")
    @classmethod
    def _parse_delays(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(float(part) for part in value.split(",") if part.strip())
        return value
