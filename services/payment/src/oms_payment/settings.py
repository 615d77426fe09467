from __future__ import annotations

from pydantic import Field

from oms_runtime.settings import ServiceSettings


class PaymentSettings(ServiceSettings):
    port: int = Field(8002, validation_alias="OMS_PAYMENT_PORT")
    gateway_url: str = "http://127.0.0.1:8090"
    # The CA bundle (PEM) that signed the gateway's certificate, for a gateway behind a
    # private CA; the system's trusted CAs otherwise. Certificates are always checked.
    gateway_ca_file: str | None = None
    # Per HTTP call; a call that takes longer counts as "no answer" and is retried.
    gateway_timeout_seconds: float = 3.0
    # How long an idle connection to the gateway is kept for the next call. Keep it
    # under the gateway's own keep-alive timeout (the simulator's, uvicorn's: 5 s):
    # otherwise a call can go out on a connection the gateway is just closing, and
    # fail (costing an attempt) although the gateway is fine.
    gateway_keepalive_seconds: float = Field(2.0, gt=0)
    # Attempts per gateway operation before giving up (authorize: the order is
    # cancelled with reason payment_unavailable).
    gateway_max_attempts: int = 4
    gateway_retry_base_delay: float = 0.5
    gateway_concurrency: int = 32
    # After this many failed calls in a row the circuit opens: calls fail at once
    # (no waiting for timeouts) until, after the cool-down, one trial call succeeds.
    gateway_breaker_failures: int = 5
    gateway_breaker_reset_seconds: float = 10.0
