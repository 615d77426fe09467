"""Inventory's domain events -> the messages other services receive; given to the
service's unit of work at bootstrap (`InventoryEvents`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from oms_contracts import Message
from oms_contracts import inventory as msgs
from oms_contracts.common import Allocation, OrderLine, PricedLine, ReturnedLine
from oms_inventory.domain import model
from oms_inventory.domain.model import (
    AllocatedParcel,
    PricedTotal,
    Product,
    Replenishment,
    Reservation,
    StockReturn,
)
from oms_inventory.handlers.unit_of_work import InventoryUnitOfWork
from oms_runtime.messaging.events import EventMap

Source = Product | Reservation | Replenishment | StockReturn


class InventoryEvents(EventMap[Source, InventoryUnitOfWork]):
    def messages(self, event: Any, source: Source) -> Sequence[Message]:
        return [message_for(event)]

    def correlation_id(self, source: Source) -> str:
        # A reservation's or a return's messages belong to its order's saga; stock
        # news to the SKU.
        if isinstance(source, Reservation | StockReturn):
            return source.order_id
        return source.sku

    async def follow_up(self, unit_of_work: InventoryUnitOfWork, event: Any) -> None:
        if isinstance(event, model.LowStockDetected):
            # Unless one is open for the SKU there already (a delivery closes it).
            await unit_of_work.replenishments.open(Replenishment.for_low_stock(event))


def message_for(event: Any) -> Message:
    match event:
        case model.StockReserved():
            return msgs.StockReserved(
                order_id=event.order_id,
                lines=_priced(event.lines),
                currency=event.currency,
                allocations=_allocations(event.parcels),
            )
        case model.StockRefused():
            return msgs.StockReservationFailed(
                order_id=event.order_id, reason=event.reason, skus=list(event.skus)
            )
        case model.StockReleased():
            return msgs.StockReleased(order_id=event.order_id)
        case model.StockShipped():
            return msgs.StockCommitted(
                order_id=event.order_id,
                lines=_lines(event.lines),
                location=event.location,
                fulfillment_id=event.fulfillment_id,
            )
        case model.ReservationAdjusted():
            return msgs.ReservationAdjusted(
                order_id=event.order_id,
                lines=_priced(event.lines),
                currency=event.currency,
                allocations=_allocations(event.parcels),
            )
        case model.AdjustmentRefused():
            return msgs.ReservationAdjustmentFailed(
                order_id=event.order_id, reason=event.reason, skus=list(event.skus)
            )
        case model.ReservationExpired():
            return msgs.ReservationExpired(order_id=event.order_id)
        case model.StockReturned():
            return msgs.StockReturned(
                order_id=event.order_id,
                return_id=event.return_id,
                lines=[
                    ReturnedLine(
                        sku=line.sku,
                        quantity=line.quantity,
                        location=line.location,
                        condition=line.condition.value,
                    )
                    for line in event.lines
                ],
            )
        case model.LowStockDetected():
            return msgs.LowStock(
                sku=event.sku,
                available=event.available,
                low_stock_threshold=event.low_stock_threshold,
                location=event.location,
            )
        case model.ReplenishmentRequested():
            return msgs.ReplenishmentRequested(
                sku=event.sku, quantity=event.quantity, location=event.location
            )
        case model.Restocked():
            return msgs.Restocked(
                sku=event.sku,
                quantity=event.quantity,
                on_hand=event.on_hand,
                reference=event.reference,
                location=event.location,
            )
    raise TypeError(f"no message for {event!r}")


def _priced(lines: tuple[PricedTotal, ...]) -> list[PricedLine]:
    return [
        PricedLine(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)
        for line in lines
    ]


def _lines(lines: tuple[tuple[str, int], ...]) -> list[OrderLine]:
    return [OrderLine(sku=sku, quantity=quantity) for sku, quantity in lines]


def _allocations(parcels: tuple[AllocatedParcel, ...]) -> list[Allocation]:
    return [
        Allocation(
            location=parcel.location.code,
            lines=_lines(parcel.lines),
            serves=sorted(parcel.location.serves) if parcel.location.serves is not None else None,
        )
        for parcel in parcels
    ]
