"""What the payment service's handlers need of a unit of work: its payments, and
`commit`. Postgres provides it in production (`db/unit_of_work.py`)."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from oms_payment.domain.model import Payment


class Payments(Protocol):
    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None: ...

    async def get_by_order(self, order_id: str, *, for_update: bool = False) -> Payment | None: ...

    def add(self, payment: Payment) -> None: ...


class PaymentUnitOfWork(Protocol):
    """One transaction. On `commit` the payments it loaded or added are written back,
    with the gateway operations they queued and the messages their events cause."""

    @property
    def payments(self) -> Payments: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...
