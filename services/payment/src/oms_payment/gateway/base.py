from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

# What the gateway answered is the payment's business (Payment.apply_gateway_answer).
from oms_payment.domain.model import Approved as Approved
from oms_payment.domain.model import Declined as Declined


@dataclass(frozen=True)
class Unavailable:
    """No answer (timeout, 5xx, connection refused): safe to retry with the same key."""

    error: str
    # The gateway did answer, with a server error that is not "try later" (a 5xx
    # other than 503/504): once the retries are spent, that counts as a refusal,
    # whereas silence (down, unreachable, overloaded) is worth asking again later.
    answered: bool = False


GatewayResult = Approved | Declined | Unavailable


@dataclass
class CallRecord:
    """One HTTP exchange with the gateway, kept for audit."""

    operation: str
    idempotency_key: str
    request: dict[str, Any]
    status_code: int | None = None
    response: dict[str, Any] | None = None
    error: str | None = None
    latency_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class PaymentGateway(Protocol):
    async def authorize(
        self, *, idempotency_key: str, amount: int, currency: str, token: str, reference: str
    ) -> tuple[GatewayResult, CallRecord]: ...

    async def capture(
        self, *, idempotency_key: str, gateway_id: str, amount: int, final: bool = True
    ) -> tuple[GatewayResult, CallRecord]:
        """Capture `amount` of the hold; `final`: the gateway releases what is left
        of it, else it stays held for more captures (one per parcel) or a void."""
        ...

    async def void(
        self, *, idempotency_key: str, gateway_id: str
    ) -> tuple[GatewayResult, CallRecord]: ...

    async def refund(
        self, *, idempotency_key: str, gateway_id: str, amount: int
    ) -> tuple[GatewayResult, CallRecord]: ...

    async def holds_for(self, reference: str) -> tuple[list[str] | None, CallRecord]:
        """Ids of authorizations still holding money under our `reference`
        (None: the gateway did not answer)."""
        ...

    async def close(self) -> None: ...
