from __future__ import annotations

from pydantic import Field

from oms_runtime.settings import ServiceSettings


class ConsoleSettings(ServiceSettings):
    port: int = Field(8080, validation_alias="OMS_CONSOLE_PORT")
    # Creates the account `admin` at start when no account exists yet; unset, the
    # first account comes from `oms-console create-user`.
    console_admin_password: str | None = None

    # Where the services answer (the console reads and acts only through them).
    order_url: str = "http://127.0.0.1:8000"
    inventory_url: str = "http://127.0.0.1:8001"
    payment_url: str = "http://127.0.0.1:8002"
    shipping_url: str = "http://127.0.0.1:8003"
    console_upstream_timeout_seconds: float = 5.0

    # Sessions end after this long without a request, and this long after sign-in
    # whatever happens.
    console_session_idle_minutes: float = 30
    console_session_max_hours: float = 12
    # Mark the cookie Secure even when the request arrived as plain HTTP (a proxy
    # in front terminates TLS); over HTTPS it is Secure anyway.
    console_cookie_secure: bool = False

    # Failed sign-ins: each one for an account makes the next attempt wait
    # base * 2^(failures - 1) seconds (at most `max`); after `threshold` failures
    # within the window the account is locked for `lockout_seconds`. One client
    # address gets `address_limit` failures per window, whatever the accounts.
    console_failure_window_seconds: float = 900
    console_throttle_base_seconds: float = 1.0
    console_throttle_max_seconds: float = 30.0
    console_lockout_threshold: int = 5
    console_lockout_seconds: float = 900
    console_address_failure_limit: int = 20

    @property
    def service_urls(self) -> dict[str, str]:
        return {
            "order": self.order_url,
            "inventory": self.inventory_url,
            "payment": self.payment_url,
            "shipping": self.shipping_url,
        }
