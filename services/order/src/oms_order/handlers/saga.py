"""One handler per reply the order saga listens to. Each loads the order, calls one
domain method and commits; the domain decides what that means in the order's state."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from oms_contracts import Message
from oms_contracts import inventory as inventory_msgs
from oms_contracts import payment as payment_msgs
from oms_contracts import shipping as shipping_msgs
from oms_contracts.common import Allocation
from oms_order.domain.model import Allocated, Order
from oms_order.domain.returns import Condition, ReceivedUnits, Return
from oms_order.domain.values import Address
from oms_order.handlers.unit_of_work import OrderUnitOfWork

log = logging.getLogger(__name__)


async def _apply(uow: OrderUnitOfWork, order_id: str, change: Callable[[Order], None]) -> None:
    async with uow:
        order = await uow.orders.get(order_id, for_update=True)
        if order is None:
            # A reply about an order we never had (or erased): nothing to do, and
            # retrying would not help. Commit so the inbox remembers it.
            log.warning("reply for unknown order", extra={"order_id": order_id})
        else:
            change(order)
        await uow.commit()


def _allocated(allocations: list[Allocation]) -> list[Allocated]:
    return [
        Allocated(
            allocation.location,
            tuple((line.sku, line.quantity) for line in allocation.lines),
            tuple(allocation.serves) if allocation.serves is not None else None,
        )
        for allocation in allocations
    ]


async def stock_reserved(message: inventory_msgs.StockReserved, uow: OrderUnitOfWork) -> None:
    prices = {line.sku: line.unit_price for line in message.lines}
    allocations = _allocated(message.allocations)
    await _apply(
        uow,
        message.order_id,
        lambda o: o.record_stock_reserved(prices, message.currency, allocations),
    )


async def stock_reservation_failed(
    message: inventory_msgs.StockReservationFailed, uow: OrderUnitOfWork
) -> None:
    await _apply(
        uow, message.order_id, lambda o: o.record_stock_unavailable(message.reason, message.skus)
    )


async def stock_released(message: inventory_msgs.StockReleased, uow: OrderUnitOfWork) -> None:
    await _apply(uow, message.order_id, lambda o: o.record_stock_released())


async def reservation_expired(
    message: inventory_msgs.ReservationExpired, uow: OrderUnitOfWork
) -> None:
    await _apply(uow, message.order_id, lambda o: o.record_reservation_expired())


async def stock_committed(message: inventory_msgs.StockCommitted, uow: OrderUnitOfWork) -> None:
    await _apply(uow, message.order_id, lambda o: o.record_stock_committed(message.fulfillment_id))


async def payment_authorized(message: payment_msgs.PaymentAuthorized, uow: OrderUnitOfWork) -> None:
    await _apply(uow, message.order_id, lambda o: o.record_payment_authorized(message.payment_id))


async def payment_authorization_failed(
    message: payment_msgs.PaymentAuthorizationFailed, uow: OrderUnitOfWork
) -> None:
    await _apply(
        uow, message.order_id, lambda o: o.record_payment_failed(message.payment_id, message.reason)
    )


async def payment_captured(message: payment_msgs.PaymentCaptured, uow: OrderUnitOfWork) -> None:
    await _apply(
        uow,
        message.order_id,
        lambda o: o.record_payment_captured(message.amount, message.fulfillment_id),
    )


async def payment_voided(message: payment_msgs.PaymentVoided, uow: OrderUnitOfWork) -> None:
    await _apply(uow, message.order_id, lambda o: o.record_payment_voided())


async def shipment_created(message: shipping_msgs.ShipmentCreated, uow: OrderUnitOfWork) -> None:
    await _apply(
        uow,
        message.order_id,
        lambda o: o.record_shipment_created(message.shipment_id, message.fulfillment_id),
    )


async def shipment_dispatched(
    message: shipping_msgs.ShipmentDispatched, uow: OrderUnitOfWork
) -> None:
    await _apply(
        uow,
        message.order_id,
        lambda o: o.record_shipment_dispatched(
            message.shipment_id, message.carrier, message.tracking_number, message.fulfillment_id
        ),
    )


async def shipment_cancelled(
    message: shipping_msgs.ShipmentCancelled, uow: OrderUnitOfWork
) -> None:
    await _apply(
        uow, message.order_id, lambda o: o.record_shipment_cancelled(message.fulfillment_id)
    )


async def shipment_failed(message: shipping_msgs.ShipmentFailed, uow: OrderUnitOfWork) -> None:
    await _apply(
        uow,
        message.order_id,
        lambda o: o.record_shipment_failed(message.reason, message.fulfillment_id),
    )


async def payment_refunded(message: payment_msgs.PaymentRefunded, uow: OrderUnitOfWork) -> None:
    if message.return_id is not None:
        await _apply_to_return(
            uow, message.return_id, lambda r: r.record_refunded(message.amount, _now())
        )
    else:
        await _apply(uow, message.order_id, lambda o: o.record_payment_refunded(message.amount))


# -- the returns' replies ---------------------------------------------------------------


async def _apply_to_return(
    uow: OrderUnitOfWork, return_id: str, change: Callable[[Return], None]
) -> None:
    async with uow:
        found = await uow.returns.get(return_id, for_update=True)
        if found is None:
            log.warning("reply for unknown return", extra={"return_id": return_id})
        else:
            change(found)
        await uow.commit()


async def return_label_created(
    message: shipping_msgs.ReturnLabelCreated, uow: OrderUnitOfWork
) -> None:
    await _apply_to_return(
        uow, message.return_id, lambda r: r.record_label(message.return_tracking_number, _now())
    )


async def return_received(message: shipping_msgs.ReturnReceived, uow: OrderUnitOfWork) -> None:
    received = [
        ReceivedUnits(line.sku, line.quantity, Condition(line.condition))
        for line in message.lines
        if line.quantity > 0
    ]
    await _apply_to_return(
        uow,
        message.return_id,
        lambda r: r.record_received(received, _now(), uow.return_policy.refund_retry),
    )


async def stock_returned(message: inventory_msgs.StockReturned, uow: OrderUnitOfWork) -> None:
    await _apply_to_return(uow, message.return_id, lambda r: r.record_stock_returned())


async def refund_failed(message: payment_msgs.RefundFailed, uow: OrderUnitOfWork) -> None:
    await _apply_to_return(
        uow, message.return_id, lambda r: r.record_refund_failed(message.error, _now())
    )


def _now() -> datetime:
    return datetime.now(UTC)


async def void_failed(
    message: payment_msgs.PaymentCompensationFailed, uow: OrderUnitOfWork
) -> None:
    await _apply(
        uow,
        message.order_id,
        lambda o: o.record_void_failed(message.error, retryable=message.retryable),
    )


async def capture_failed(message: payment_msgs.PaymentCaptureFailed, uow: OrderUnitOfWork) -> None:
    await _apply(
        uow,
        message.order_id,
        lambda o: o.record_capture_failed(message.error, retryable=message.retryable),
    )


async def address_changed(
    message: shipping_msgs.ShippingAddressChanged, uow: OrderUnitOfWork
) -> None:
    address = Address(**message.shipping_address.model_dump())
    await _apply(uow, message.order_id, lambda o: o.record_address_changed(address))


async def address_change_refused(
    message: shipping_msgs.ShippingAddressChangeRefused, uow: OrderUnitOfWork
) -> None:
    await _apply(uow, message.order_id, lambda o: o.record_address_change_refused(message.reason))


async def shipment_delivered(
    message: shipping_msgs.ShipmentDelivered, uow: OrderUnitOfWork
) -> None:
    await _apply(
        uow,
        message.order_id,
        lambda o: o.record_delivery(
            message.shipment_id, message.carrier, message.tracking_number, message.fulfillment_id
        ),
    )


async def shipment_held(message: shipping_msgs.ShipmentHeld, uow: OrderUnitOfWork) -> None:
    await _apply(uow, message.order_id, lambda o: o.record_shipment_held())


async def shipment_hold_refused(
    message: shipping_msgs.ShipmentHoldRefused, uow: OrderUnitOfWork
) -> None:
    await _apply(uow, message.order_id, lambda o: o.record_shipment_hold_refused(message.reason))


async def shipment_updated(message: shipping_msgs.ShipmentUpdated, uow: OrderUnitOfWork) -> None:
    await _apply(uow, message.order_id, lambda o: o.record_shipment_updated())


async def shipment_released(message: shipping_msgs.ShipmentReleased, uow: OrderUnitOfWork) -> None:
    await _apply(uow, message.order_id, lambda o: o.record_shipment_released())


async def reservation_adjusted(
    message: inventory_msgs.ReservationAdjusted, uow: OrderUnitOfWork
) -> None:
    prices = {line.sku: line.unit_price for line in message.lines}
    allocations = _allocated(message.allocations)
    await _apply(
        uow, message.order_id, lambda o: o.record_reservation_adjusted(prices, allocations)
    )


async def reservation_adjustment_failed(
    message: inventory_msgs.ReservationAdjustmentFailed, uow: OrderUnitOfWork
) -> None:
    await _apply(
        uow,
        message.order_id,
        lambda o: o.record_reservation_adjustment_failed(message.reason, message.skus),
    )


async def payment_reauthorized(
    message: payment_msgs.PaymentReauthorized, uow: OrderUnitOfWork
) -> None:
    await _apply(uow, message.order_id, lambda o: o.record_reauthorized())


async def payment_reauthorization_failed(
    message: payment_msgs.PaymentReauthorizationFailed, uow: OrderUnitOfWork
) -> None:
    await _apply(uow, message.order_id, lambda o: o.record_reauthorization_failed(message.reason))


HANDLERS: dict[type[Message], Callable[..., Awaitable[None]]] = {
    shipping_msgs.ReturnLabelCreated: return_label_created,
    shipping_msgs.ReturnReceived: return_received,
    inventory_msgs.StockReturned: stock_returned,
    payment_msgs.RefundFailed: refund_failed,
    inventory_msgs.StockReserved: stock_reserved,
    inventory_msgs.StockReservationFailed: stock_reservation_failed,
    inventory_msgs.StockReleased: stock_released,
    inventory_msgs.StockCommitted: stock_committed,
    inventory_msgs.ReservationExpired: reservation_expired,
    payment_msgs.PaymentAuthorized: payment_authorized,
    payment_msgs.PaymentAuthorizationFailed: payment_authorization_failed,
    payment_msgs.PaymentCaptured: payment_captured,
    payment_msgs.PaymentVoided: payment_voided,
    payment_msgs.PaymentRefunded: payment_refunded,
    payment_msgs.PaymentCompensationFailed: void_failed,
    payment_msgs.PaymentCaptureFailed: capture_failed,
    shipping_msgs.ShipmentCreated: shipment_created,
    shipping_msgs.ShipmentDispatched: shipment_dispatched,
    shipping_msgs.ShipmentCancelled: shipment_cancelled,
    shipping_msgs.ShipmentFailed: shipment_failed,
    shipping_msgs.ShipmentDelivered: shipment_delivered,
    shipping_msgs.ShippingAddressChanged: address_changed,
    shipping_msgs.ShippingAddressChangeRefused: address_change_refused,
    shipping_msgs.ShipmentHeld: shipment_held,
    shipping_msgs.ShipmentHoldRefused: shipment_hold_refused,
    shipping_msgs.ShipmentUpdated: shipment_updated,
    shipping_msgs.ShipmentReleased: shipment_released,
    inventory_msgs.ReservationAdjusted: reservation_adjusted,
    inventory_msgs.ReservationAdjustmentFailed: reservation_adjustment_failed,
    payment_msgs.PaymentReauthorized: payment_reauthorized,
    payment_msgs.PaymentReauthorizationFailed: payment_reauthorization_failed,
}
