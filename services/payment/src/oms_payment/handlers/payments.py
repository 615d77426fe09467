"""Use cases behind the payment API."""

from __future__ import annotations

import uuid

from oms_payment.domain.model import PaymentError, Refund
from oms_payment.handlers.unit_of_work import PaymentUnitOfWork


class PaymentNotFound(PaymentError):
    code = "payment_not_found"

    def __init__(self, payment_id: str) -> None:
        super().__init__(f"No payment {payment_id}")


class RefundKeyReused(PaymentError):
    """The same idempotency key came with a different refund."""

    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__("This key was used for a different refund")


async def refund_payment(
    payment_id: str,
    amount: int,
    reason: str,
    idempotency_key: str | None,
    uow: PaymentUnitOfWork,
) -> tuple[Refund, bool]:
    """Refund (part of) a captured payment. With an idempotency key, asking again
    returns the refund already made instead of refunding twice. Returns the refund
    and whether it is one asked for before (a replay)."""
    async with uow:
        payment = await uow.payments.get(payment_id, for_update=True)
        if payment is None:
            raise PaymentNotFound(payment_id)
        refund_id = f"{payment.id}-{idempotency_key}" if idempotency_key else str(uuid.uuid4())
        existing = next((r for r in payment.refunds if r.id == refund_id), None)
        if existing is not None:
            if (existing.amount, existing.reason) != (amount, reason):
                raise RefundKeyReused()
            return existing, True
        refund = payment.refund(refund_id, amount, reason)
        await uow.commit()
    return refund, False
