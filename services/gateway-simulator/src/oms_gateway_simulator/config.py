"""Runtime configuration (plain Python, no web framework)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class GatewayConfig:
    """Fault-injection knobs; see README for their meaning."""

    latency_ms: int = 0
    failure_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_delay_seconds: float = 30.0
    # `tok_refund_refused` authorizations have their refunds refused while true;
    # false stands for "the problem was fixed at the gateway".
    refund_refused_token_active: bool = True

    def __post_init__(self) -> None:
        # Validated here too (not only at the HTTP layer) so a bad env var
        # fails at startup instead of producing odd behaviour later.
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        for name in ("failure_rate", "timeout_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.timeout_delay_seconds <= 0:
            raise ValueError("timeout_delay_seconds must be > 0")

    def as_dict(self) -> dict[str, int | float | bool]:
        return asdict(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewayConfig:
        env = os.environ if environ is None else environ
        return cls(
            latency_ms=int(env.get("OMS_GATEWAY_LATENCY_MS", "0")),
            failure_rate=float(env.get("OMS_GATEWAY_FAILURE_RATE", "0")),
            timeout_rate=float(env.get("OMS_GATEWAY_TIMEOUT_RATE", "0")),
            timeout_delay_seconds=float(
                env.get("OMS_GATEWAY_TIMEOUT_DELAY_SECONDS", "30")
            ),
            refund_refused_token_active=_flag(
                env.get("OMS_GATEWAY_REFUND_REFUSED_TOKEN_ACTIVE", "true")
            ),
        )


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise ValueError(f"expected true or false, got {raw!r}")
    return value == "true"


def seed_from_env(environ: Mapping[str, str] | None = None) -> int | None:
    env = os.environ if environ is None else environ
    raw = env.get("OMS_GATEWAY_SEED", "").strip()
    return int(raw) if raw else None


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """Postgres to keep the ledger in (schema `gateway_simulator`); None: memory."""
    env = os.environ if environ is None else environ
    url = env.get("OMS_GATEWAY_DATABASE_URL", "").strip()
    # The services' URLs may name SQLAlchemy's driver; asyncpg wants plain libpq.
    return url.replace("postgresql+asyncpg://", "postgresql://", 1) or None


def admin_key_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The key the test/ops endpoints (`/v1/_*`) require, if any."""
    env = os.environ if environ is None else environ
    return env.get("OMS_GATEWAY_ADMIN_KEY", "").strip() or None
