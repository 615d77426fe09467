"""An in-memory unit of work for the payment service's handlers: its repositories are
dictionaries and lists; `commit` (oms_devtools' InMemoryUnitOfWork) runs the
service's own event map over the payments it loaded or added, as the real one does,
minus Postgres. The gateway operations a commit queues wait in `queued` for a test to
answer them, as the gateway worker would."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from oms_devtools.fakes import InMemoryUnitOfWork, TrackingRepository
from oms_payment.domain.model import GatewayAnswer, Operation, Payment
from oms_payment.handlers.outgoing import PaymentEvents


class FakePayments:
    def __init__(self, payments: list[Payment]) -> None:
        self.by_id = {payment.id: payment for payment in payments}
        self.tracked: list[Any] = []
        # (payment id, fulfillment id, amount) of every capture put into the books.
        self.booked: list[tuple[str, str | None, int]] = []

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        payment = self.by_id.get(payment_id)
        if payment is not None and for_update and payment not in self.tracked:
            self.tracked.append(payment)
        return payment

    async def get_by_order(self, order_id: str, *, for_update: bool = False) -> Payment | None:
        found = next((p for p in self.by_id.values() if p.order_id == order_id), None)
        return None if found is None else await self.get(found.id, for_update=for_update)

    def add(self, payment: Payment) -> None:
        self.by_id[payment.id] = payment
        self.tracked.append(payment)

    def book_capture(self, payment: Payment, fulfillment_id: str | None, amount: int) -> None:
        self.booked.append((payment.id, fulfillment_id, amount))


class FakeGatewayOperations:
    def __init__(self) -> None:
        self.erased_for: list[str] = []

    async def erase_card_tokens(self, payment_id: str) -> None:
        self.erased_for.append(payment_id)


class FakePaymentUnitOfWork(InMemoryUnitOfWork):
    def __init__(self, *payments: Payment) -> None:
        super().__init__(PaymentEvents())
        self.payments = FakePayments(list(payments))
        self.operations = FakeGatewayOperations()
        # Gateway operations committed and not yet answered, oldest first.
        self.queued: list[Operation] = []

    def repositories(self) -> Sequence[TrackingRepository]:
        return [self.payments]

    def stored(self) -> None:
        for payment in self.payments.tracked:
            self.queued.extend(payment.operations)
            payment.operations.clear()


async def the_gateway_answers(uow: FakePaymentUnitOfWork, answer: GatewayAnswer) -> Operation:
    """What the gateway worker does with the oldest queued operation: the answer
    applied to its payment in a unit of work of its own."""
    operation = uow.queued.pop(0)
    async with uow:
        payment = await uow.payments.get(operation.payment_id, for_update=True)
        assert payment is not None
        payment.apply_gateway_answer(operation, answer)
        await uow.commit()
    return operation
