"""What the payment service's handlers need of a unit of work: its payments, and
`commit`. Postgres provides it in production (`db/unit_of_work.py`)."""

from __future__ import annotations

from typing import Protocol

from oms_payment.domain.model import Payment
from oms_runtime.messaging.unit_of_work import AbstractUnitOfWork


class Payments(Protocol):
    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None: ...

    async def get_by_order(self, order_id: str, *, for_update: bool = False) -> Payment | None: ...

    def add(self, payment: Payment) -> None: ...

    def book_capture(self, payment: Payment, fulfillment_id: str | None, amount: int) -> None:
        """Money the gateway captured, into the books (the settlement report's)."""
        ...


class GatewayOperations(Protocol):
    async def erase_card_tokens(self, payment_id: str) -> None:
        """Remove the card token from the payment's gateway-call audit log."""
        ...


class PaymentUnitOfWork(AbstractUnitOfWork, Protocol):
    """One transaction. On `commit` the payments it loaded or added are written back,
    with the gateway operations they queued and the messages their events cause."""

    @property
    def payments(self) -> Payments: ...

    @property
    def operations(self) -> GatewayOperations: ...
