"""Payment domain events -> the messages other services receive; given to the
service's unit of work at bootstrap (`PaymentEvents`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from oms_contracts import Envelope, Message
from oms_contracts import payment as msgs
from oms_payment.db.unit_of_work import SqlPaymentUnitOfWork
from oms_payment.domain import model
from oms_payment.domain.model import Payment
from oms_runtime.messaging.events import EventMap

log = logging.getLogger(__name__)


class PaymentEvents(EventMap[Payment, SqlPaymentUnitOfWork]):
    def messages(self, event: model.PaymentEvent, source: Payment) -> Sequence[Message]:
        message = message_for(event)
        return [message] if message is not None else []

    def correlation_id(self, source: Payment) -> str:
        return source.order_id

    def recorded(
        self,
        unit_of_work: SqlPaymentUnitOfWork,
        source: Payment,
        event: model.PaymentEvent,
        sent: Sequence[Envelope],
    ) -> None:
        if isinstance(event, model.Captured) and not event.repeated:
            unit_of_work.payments.book_capture(source, event.fulfillment_id, event.amount)
        elif isinstance(event, model.HoldMayRemain):
            log.error(
                "could not check for orphan holds; check the gateway by hand",
                extra={"payment_id": source.id, "error": event.error},
            )
        elif isinstance(event, model.ReturnRefundFailed):
            # The order service parks the return for an operator (retry or force).
            log.warning(
                "refund of a return not made",
                extra={"payment_id": source.id, "return_id": event.return_id, "error": event.error},
            )


def message_for(event: model.PaymentEvent) -> Message | None:
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
                fulfillment_id=event.fulfillment_id,
                captured_total=event.captured_total,
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
                return_id=event.return_id,
            )
        case model.ReturnRefundFailed():
            return msgs.RefundFailed(
                order_id=event.order_id,
                payment_id=event.payment_id,
                return_id=event.return_id,
                error=event.error,
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
                order_id=event.order_id,
                payment_id=event.payment_id,
                error=event.error,
                retryable=event.retryable,
            )
        case model.CaptureFailed():
            return msgs.PaymentCaptureFailed(
                order_id=event.order_id,
                payment_id=event.payment_id,
                error=event.error,
                fulfillment_id=event.fulfillment_id,
                retryable=event.retryable,
            )
        case model.HoldMayRemain():
            return None  # for a person, not for another service (see PaymentEvents)
    raise TypeError(f"no message for {event!r}")
