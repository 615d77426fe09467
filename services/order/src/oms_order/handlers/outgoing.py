"""The order's domain events -> the messages they cause, and the order's history.

This is the saga's wiring: which command follows which step lives in this one map
(`messages_for`). `OrderEvents` is what the service's unit of work is given at
bootstrap to apply it on every commit.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Sequence
from typing import Any

from oms_contracts import Envelope, Message
from oms_contracts import inventory as inventory_msgs
from oms_contracts import order as order_msgs
from oms_contracts import payment as payment_msgs
from oms_contracts import shipping as shipping_msgs
from oms_contracts.common import OrderLine, Parcel, ReturnedLine, ReturnLine, ShippingAddress
from oms_order.db.unit_of_work import SqlOrderUnitOfWork
from oms_order.domain import events, returns
from oms_order.domain.model import Order
from oms_order.domain.returns import Return
from oms_order.domain.values import ERASED_ADDRESS
from oms_runtime.messaging.events import EventMap


def messages_for(event: events.OrderEvent, order: Order) -> list[Message]:
    match event:
        case events.OrderPlaced():
            return [
                order_msgs.OrderCreated(
                    order_id=order.id,
                    customer_id=order.customer_id,
                    lines=_lines(order),
                    shipping_address=_address(order),
                    created_at=event.created_at,
                ),
                inventory_msgs.ReserveStock(
                    order_id=order.id,
                    lines=_lines(order),
                    country=order.shipping_address.country,
                ),
            ]
        case events.OrderAwaitingPayment():
            return [
                order_msgs.OrderAwaitingPayment(
                    order_id=order.id, total=event.total, currency=event.currency
                ),
                payment_msgs.AuthorizePayment(
                    order_id=order.id,
                    amount=event.total,
                    currency=event.currency,
                    payment_token=order.payment_token,
                ),
            ]
        case events.OrderRejected():
            return [
                order_msgs.OrderRejected(
                    order_id=order.id, reason=event.reason, skus=list(event.skus)
                )
            ]
        case events.OrderPaid():
            return [
                order_msgs.OrderPaid(
                    order_id=order.id,
                    payment_id=event.payment_id,
                    total=order.total or 0,
                    currency=order.currency or "",
                ),
                *(
                    shipping_msgs.CreateShipment(
                        order_id=order.id,
                        lines=_pairs(tuple(parcel.lines)),
                        shipping_address=_address(order),
                        fulfillment_id=parcel.id,
                        location=parcel.location,
                    )
                    for parcel in order.fulfillments
                ),
            ]
        case events.OrderFulfilling():
            return [
                order_msgs.OrderFulfilling(
                    order_id=order.id,
                    shipment_id=event.shipment_id,
                    parcels=[
                        Parcel(
                            fulfillment_id=parcel.id,
                            location=parcel.location,
                            lines=_pairs(tuple(parcel.lines)),
                        )
                        for parcel in order.fulfillments
                    ],
                )
            ]
        case events.ParcelDispatched():
            return [
                inventory_msgs.CommitStock(
                    order_id=order.id, location=event.location, fulfillment_id=event.fulfillment_id
                ),
                payment_msgs.CapturePayment(
                    order_id=order.id, amount=event.amount, fulfillment_id=event.fulfillment_id
                ),
            ]
        case events.OrderPartiallyShipped():
            return [
                order_msgs.OrderPartiallyShipped(
                    order_id=order.id,
                    fulfillment_id=event.fulfillment_id,
                    location=event.location,
                    carrier=event.carrier,
                    tracking_number=event.tracking_number,
                )
            ]
        case events.OrderShipped():
            return [
                order_msgs.OrderShipped(
                    order_id=order.id,
                    carrier=event.carrier,
                    tracking_number=event.tracking_number,
                )
            ]
        case events.OrderCompleted():
            return [order_msgs.OrderCompleted(order_id=order.id)]
        case events.CompensationRequested():
            compensations: list[Message] = []
            if event.cancel_shipment:
                compensations.extend(
                    shipping_msgs.CancelShipment(
                        order_id=order.id, reason=event.reason, fulfillment_id=fulfillment
                    )
                    for fulfillment in event.cancel_parcels or (None,)
                )
            if event.void_payment:
                compensations.append(
                    payment_msgs.VoidPayment(
                        order_id=order.id, reason=event.reason, keep_amount=event.keep_amount
                    )
                )
            if event.release_stock:
                compensations.append(
                    inventory_msgs.ReleaseStock(order_id=order.id, reason=event.reason)
                )
            return compensations
        case events.SettlementRequested():
            settlement: list[Message] = []
            for parcel in event.parcels:
                if parcel.commit_stock:
                    settlement.append(
                        inventory_msgs.CommitStock(
                            order_id=order.id,
                            location=parcel.location,
                            fulfillment_id=parcel.fulfillment_id,
                        )
                    )
                if parcel.capture_payment:
                    settlement.append(
                        payment_msgs.CapturePayment(
                            order_id=order.id,
                            amount=parcel.amount,
                            fulfillment_id=parcel.fulfillment_id,
                        )
                    )
            return settlement
        case events.OrderCancelled():
            return [order_msgs.OrderCancelled(order_id=order.id, reason=event.reason)]
        case events.OrderPartiallyCancelled():
            return [
                order_msgs.OrderPartiallyCancelled(
                    order_id=order.id,
                    reason=event.reason,
                    cancelled_lines=_pairs(event.cancelled_lines),
                )
            ]
        case events.ShippingAddressChangeRequested():
            assert order.pending_address is not None
            return [
                shipping_msgs.ChangeShippingAddress(
                    order_id=order.id,
                    shipping_address=ShippingAddress(**dataclasses.asdict(order.pending_address)),
                )
            ]
        case events.AmendmentStarted():
            return [shipping_msgs.HoldShipment(order_id=order.id)]
        case events.AmendmentStockRequested() | events.AmendmentStockRevertRequested():
            return [
                inventory_msgs.AdjustReservation(
                    order_id=order.id, lines=_pairs(event.lines), country=event.country
                )
            ]
        case events.AmendmentPaymentRequested():
            return [payment_msgs.ReauthorizePayment(order_id=order.id, amount=event.amount)]
        case events.AmendmentShipmentUpdateRequested():
            return [
                shipping_msgs.UpdateShipment(
                    order_id=order.id,
                    lines=_pairs(event.lines),
                    parcels=[
                        Parcel(fulfillment_id=fid, location=location, lines=_pairs(lines))
                        for fid, location, lines in event.parcels
                    ],
                )
            ]
        case events.AmendmentShipmentReleaseRequested():
            return [shipping_msgs.ReleaseShipment(order_id=order.id)]
        case events.OrderAmended():
            return [
                order_msgs.OrderAmended(
                    order_id=order.id,
                    lines=_lines(order),
                    total=event.total,
                    currency=order.currency or "",
                )
            ]
        case events.OrderDeleted():
            return [order_msgs.OrderDeleted(order_id=order.id)]
        case events.OrderRequiresAttention():
            return [
                order_msgs.OrderRequiresAttention(
                    order_id=order.id, reason=event.reason, pending=list(event.pending)
                )
            ]
        case _:
            # Bookkeeping steps (confirmations, operator actions, ignored replies):
            # history only.
            return []


def return_messages_for(event: returns.ReturnEvent, found: Return) -> list[Message]:
    """The return's saga: what each of its steps asks of the other services, and
    what it tells subscribers."""
    match event:
        case returns.ReturnRequested():
            return [
                order_msgs.OrderReturnRequested(
                    order_id=found.order_id,
                    return_id=found.id,
                    lines=[
                        ReturnLine(sku=line.sku, quantity=line.quantity, location=line.location)
                        for line in found.lines
                    ],
                    reason=found.reason,
                )
            ]
        case returns.ReturnApproved():
            return [
                order_msgs.OrderReturnApproved(order_id=found.order_id, return_id=found.id),
                shipping_msgs.CreateReturnLabel(
                    order_id=found.order_id,
                    return_id=found.id,
                    lines=[
                        ReturnLine(sku=line.sku, quantity=line.quantity, location=line.location)
                        for line in found.lines
                    ],
                    shipping_address=ShippingAddress(
                        **dataclasses.asdict(found.pickup_address or ERASED_ADDRESS)
                    ),
                ),
            ]
        case returns.ReturnRejected():
            return [
                order_msgs.OrderReturnRejected(
                    order_id=found.order_id, return_id=found.id, reason=event.reason
                )
            ]
        case returns.ReturnCancelled():
            cancelled: list[Message] = [
                order_msgs.OrderReturnCancelled(
                    order_id=found.order_id, return_id=found.id, reason=event.reason
                )
            ]
            if event.label_issued:
                cancelled.append(
                    shipping_msgs.CancelReturn(order_id=found.order_id, return_id=found.id)
                )
            return cancelled
        case returns.ReturnReceived():
            stock = found.returned_stock()
            if not stock:
                return []
            return [
                inventory_msgs.ReturnStock(
                    order_id=found.order_id,
                    return_id=found.id,
                    lines=[
                        ReturnedLine(
                            sku=units.sku,
                            quantity=units.quantity,
                            location=units.location,
                            condition=units.condition.value,
                        )
                        for units in stock
                    ],
                )
            ]
        case returns.RefundRequested():
            return [
                payment_msgs.RefundReturn(
                    order_id=found.order_id,
                    return_id=found.id,
                    amount=event.amount,
                    attempt=event.attempt,
                )
            ]
        case returns.ReturnRefunded():
            return [
                order_msgs.OrderReturnRefunded(
                    order_id=found.order_id,
                    return_id=found.id,
                    amount=event.amount,
                    currency=found.currency,
                )
            ]
        case returns.ReturnRequiresAttention():
            return [
                order_msgs.OrderReturnRequiresAttention(
                    order_id=found.order_id, return_id=found.id, reason=event.reason
                )
            ]
        case _:
            # Bookkeeping (the label, the stock taken back, operator actions).
            return []


class OrderEvents(EventMap[Order | Return, SqlOrderUnitOfWork]):
    """Orders and their returns: both sagas run here, and both write the order's
    history."""

    def messages(self, event: Any, source: Order | Return) -> Sequence[Message]:
        if isinstance(source, Return):
            return return_messages_for(event, source)
        return messages_for(event, source)

    def correlation_id(self, source: Order | Return) -> str:
        return source.order_id if isinstance(source, Return) else source.id

    def recorded(
        self,
        unit_of_work: SqlOrderUnitOfWork,
        source: Order | Return,
        event: Any,
        sent: Sequence[Envelope],
    ) -> None:
        """Every step goes into the order's history: what happened, what it was an
        answer to, and what it sent."""
        detail = _detail(event)
        if sent:
            detail["sent"] = [envelope.type for envelope in sent]
        incoming = unit_of_work.incoming
        if incoming is not None:
            detail["received"] = incoming.type
        unit_of_work.orders.record_history(
            {
                "order_id": self.correlation_id(source),
                "step": _step_name(event),
                "status": source.status.value,
                "detail": detail,
                "message_id": unit_of_work.causation_id,
            }
        )


def _step_name(event: Any) -> str:
    return _snake_case(type(event).__name__)


@functools.cache
def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _detail(event: Any) -> dict[str, Any]:
    # Events are flat (strings, numbers, tuples of them, times, small value records):
    # no deep copy needed.
    detail = {}
    for name in _detail_fields(type(event)):
        value = getattr(event, name)
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        elif value and isinstance(value, tuple) and dataclasses.is_dataclass(value[0]):
            value = [dataclasses.asdict(item) for item in value]
        detail[name] = value
    return detail


_DETAIL_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def _detail_fields(event_type: type[Any]) -> tuple[str, ...]:
    names = _DETAIL_FIELDS.get(event_type)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(event_type) if f.name != "order_id")
        _DETAIL_FIELDS[event_type] = names
    return names


def _lines(order: Order) -> list[OrderLine]:
    return [OrderLine(sku=line.sku, quantity=line.quantity) for line in order.lines]


def _pairs(lines: tuple[tuple[str, int], ...]) -> list[OrderLine]:
    return [OrderLine(sku=sku, quantity=quantity) for sku, quantity in lines]


def _address(order: Order) -> ShippingAddress:
    return ShippingAddress(**dataclasses.asdict(order.shipping_address))
