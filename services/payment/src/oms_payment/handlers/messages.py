"""One handler per command the payment service accepts. None of them calls the
gateway: they queue operations that the gateway worker carries out."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from oms_contracts import Message
from oms_contracts import order as order_msgs
from oms_contracts import payment as msgs
from oms_payment.domain.model import Payment
from oms_payment.handlers.unit_of_work import PaymentUnitOfWork

log = logging.getLogger(__name__)


async def authorize_payment(command: msgs.AuthorizePayment, uow: PaymentUnitOfWork) -> None:
    async with uow:
        payment = await uow.payments.get_by_order(command.order_id, for_update=True)
        if payment is not None:
            payment.repeat_outcome()
        else:
            uow.payments.add(
                Payment.start(
                    payment_id=str(uuid.uuid4()),
                    order_id=command.order_id,
                    amount=command.amount,
                    currency=command.currency,
                    token=command.payment_token,
                )
            )
        await uow.commit()


async def capture_payment(command: msgs.CapturePayment, uow: PaymentUnitOfWork) -> None:
    async with uow:
        payment = await uow.payments.get_by_order(command.order_id, for_update=True)
        if payment is None:
            log.error("capture for an order without payment", extra={"order_id": command.order_id})
        else:
            payment.request_capture(command.amount, command.fulfillment_id)
        await uow.commit()


async def void_payment(command: msgs.VoidPayment, uow: PaymentUnitOfWork) -> None:
    async with uow:
        payment = await uow.payments.get_by_order(command.order_id, for_update=True)
        if payment is None:
            uow.payments.add(
                Payment.cancelled_before_authorization(
                    payment_id=str(uuid.uuid4()), order_id=command.order_id
                )
            )
        else:
            payment.request_void(command.keep_amount)
        await uow.commit()


async def reauthorize_payment(command: msgs.ReauthorizePayment, uow: PaymentUnitOfWork) -> None:
    async with uow:
        payment = await uow.payments.get_by_order(command.order_id, for_update=True)
        if payment is None:
            log.error(
                "re-authorization for an order without payment",
                extra={"order_id": command.order_id},
            )
        else:
            payment.reauthorize(command.amount)
        await uow.commit()


async def refund_return(command: msgs.RefundReturn, uow: PaymentUnitOfWork) -> None:
    async with uow:
        payment = await uow.payments.get_by_order(command.order_id, for_update=True)
        if payment is None:
            # Returns are of shipped orders, whose money was captured: nothing to refund
            # from. Unanswered, the order service's deadline parks the return.
            log.error(
                "refund for a return of an order without payment",
                extra={"order_id": command.order_id, "return_id": command.return_id},
            )
        else:
            payment.refund_return(command.return_id, command.attempt, command.amount)
        await uow.commit()


async def order_deleted(event: order_msgs.OrderDeleted, uow: PaymentUnitOfWork) -> None:
    """Erasure: the card token goes, from the payment and from its audit log."""
    async with uow:
        payment = await uow.payments.get_by_order(event.order_id, for_update=True)
        if payment is None:
            await uow.commit()
            return
        payment.erase_card_token()
        await uow.operations.erase_card_tokens(payment.id)
        await uow.commit()


HANDLERS: dict[type[Message], Callable[..., Awaitable[None]]] = {
    msgs.AuthorizePayment: authorize_payment,
    msgs.CapturePayment: capture_payment,
    msgs.VoidPayment: void_payment,
    msgs.ReauthorizePayment: reauthorize_payment,
    msgs.RefundReturn: refund_return,
    order_msgs.OrderDeleted: order_deleted,
}
