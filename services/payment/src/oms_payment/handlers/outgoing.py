"""Payment domain events -> the messages other services receive."""

from __future__ import annotations

from oms_contracts import Message
from oms_contracts import payment as msgs
from oms_payment.db.unit_of_work import PaymentUnitOfWork
from oms_payment.domain import model
from oms_payment.domain.model import Payment


def message_for(event: model.PaymentEvent) -> Message:
    match event:
        case model.Authorized():
            return msgs.PaymentAuthorized(
                order_id=event.order_id,
                payment_id=event.payment_id,
                amount=event.amount,
                currency=event.currency,
            )
        case model.AuthorizationFailed():
            return msgs.PaymentAuthorizationFailed(
                order_id=event.order_id,
                payment_id=event.payment_id,
                reason=event.reason,
                decline_code=event.decline_code,
            )
        case model.Captured():
            return msgs.PaymentCaptured(
                order_id=event.order_id,
                payment_id=event.payment_id,
                amount=event.amount,
                currency=event.currency,
            )
        case model.Voided():
            return msgs.PaymentVoided(order_id=event.order_id, payment_id=event.payment_id)
        case model.Refunded():
            return msgs.PaymentRefunded(
                order_id=event.order_id,
                payment_id=event.payment_id,
                refund_id=event.refund_id,
                amount=event.amount,
                refunded_total=event.refunded_total,
                currency=event.currency,
            )
        case model.Reauthorized():
            return msgs.PaymentReauthorized(
                order_id=event.order_id,
                payment_id=event.payment_id,
                amount=event.amount,
                currency=event.currency,
            )
        case model.ReauthorizationFailed():
            return msgs.PaymentReauthorizationFailed(
                order_id=event.order_id, payment_id=event.payment_id, reason=event.reason
            )
        case model.CompensationFailed():
            return msgs.PaymentCompensationFailed(
                order_id=event.order_id, payment_id=event.payment_id, error=event.error
            )
        case model.CaptureFailed():
            return msgs.PaymentCaptureFailed(
                order_id=event.order_id, payment_id=event.payment_id, error=event.error
            )
    raise TypeError(f"no message for {event!r}")


async def commit_payment(
    uow: PaymentUnitOfWork, payment: Payment, *, new: bool = False, save_with_commit: bool = False
) -> None:
    """Persist the payment, queue its gateway operations, publish its events."""
    if new:
        await uow.payments.add(payment)
    else:
        await uow.payments.save(payment, with_commit=save_with_commit)
    for event in payment.events:
        uow.publish(message_for(event), correlation_id=payment.order_id)
    payment.events.clear()
    await uow.commit()
