"""Maps shipments and their tracking timeline to tables."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from oms_shipping.db.tables import seen_webhooks, shipments, tracking_events
from oms_shipping.domain.model import Address, Line, Shipment, ShipmentStatus, TrackingEvent

_MUTABLE_COLUMNS = tuple(
    column.name
    for column in shipments.columns
    if column.name not in ("id", "order_id", "created_at", "updated_at")
)
# Built once: every saga step that reaches shipping runs them.
_GET = select(shipments).where(shipments.c.id == bindparam("b_id"))
_GET_FOR_UPDATE = _GET.with_for_update()
_GET_BY_ORDER = select(shipments).where(shipments.c.order_id == bindparam("b_order_id"))
_GET_BY_ORDER_FOR_UPDATE = _GET_BY_ORDER.with_for_update()
_INSERT = shipments.insert()
_SAVE = (
    update(shipments)
    .where(shipments.c.id == bindparam("b_id"))
    .values(
        {
            **{name: bindparam(f"b_{name}") for name in _MUTABLE_COLUMNS},
            "updated_at": func.now(),
        }
    )
)
_ADD_TRACKING_EVENTS = pg_insert(tracking_events).on_conflict_do_nothing(
    constraint="tracking_event_once"
)

_REMEMBER_WEBHOOK = (
    pg_insert(seen_webhooks)
    .on_conflict_do_nothing(index_elements=["webhook_id"])
    .returning(seen_webhooks.c.webhook_id)
)
# A bounded batch per call, skipping rows another transaction is pruning.
_FORGET_WEBHOOKS = delete(seen_webhooks).where(
    seen_webhooks.c.webhook_id.in_(
        select(seen_webhooks.c.webhook_id)
        .where(seen_webhooks.c.received_at < bindparam("b_before"))
        .limit(100)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
)


class ShipmentRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, shipment_id: str, *, for_update: bool = False) -> Shipment | None:
        try:
            key = uuid.UUID(shipment_id)
        except ValueError:
            return None
        return await self._one(_GET_FOR_UPDATE if for_update else _GET, {"b_id": key})

    async def get_by_order(self, order_id: str, *, for_update: bool = False) -> Shipment | None:
        return await self._one(
            _GET_BY_ORDER_FOR_UPDATE if for_update else _GET_BY_ORDER, {"b_order_id": order_id}
        )

    async def _one(self, query: Any, parameters: dict[str, Any]) -> Shipment | None:
        row = (await self._connection.execute(query, parameters)).mappings().first()
        if row is None:
            return None
        return Shipment(
            id=str(row["id"]),
            order_id=row["order_id"],
            lines=[Line(**line) for line in row["lines"]],
            address=Address(**row["address"]) if row["address"] else None,
            status=ShipmentStatus(row["status"]),
            carrier=row["carrier"],
            tracking_number=row["tracking_number"],
            dispatched_at=row["dispatched_at"],
            delivered_at=row["delivered_at"],
            last_event_at=row["last_event_at"],
            failure_reason=row["failure_reason"],
        )

    async def add(self, shipment: Shipment) -> None:
        await self._connection.execute(_INSERT, _row(shipment))

    async def save(self, shipment: Shipment) -> None:
        row = _row(shipment)
        await self._connection.execute(
            _SAVE, {f"b_{name}": row[name] for name in ("id", *_MUTABLE_COLUMNS)}
        )
        if shipment.new_tracking_events:
            await self._connection.execute(
                _ADD_TRACKING_EVENTS,
                [
                    {
                        "shipment_id": uuid.UUID(shipment.id),
                        "status": event.status.value,
                        "location": event.location,
                        "occurred_at": event.occurred_at,
                    }
                    for event in shipment.new_tracking_events
                ],
            )
            shipment.new_tracking_events.clear()

    async def has_tracking_event(self, shipment_id: str, event: TrackingEvent) -> bool:
        found = await self._connection.scalar(
            select(tracking_events.c.id).where(
                tracking_events.c.shipment_id == uuid.UUID(shipment_id),
                tracking_events.c.status == event.status.value,
                tracking_events.c.occurred_at == event.occurred_at,
            )
        )
        return found is not None

    async def remember_webhook(self, webhook_id: str, shipment_id: str) -> bool:
        """Record a carrier webhook id; False if it was seen before (a replay)."""
        inserted = await self._connection.scalar(
            _REMEMBER_WEBHOOK, {"webhook_id": webhook_id, "shipment_id": uuid.UUID(shipment_id)}
        )
        return inserted is not None

    async def forget_webhooks_before(self, before: datetime) -> None:
        await self._connection.execute(_FORGET_WEBHOOKS, {"b_before": before})


def _row(shipment: Shipment) -> dict[str, Any]:
    return {
        "id": uuid.UUID(shipment.id),
        "order_id": shipment.order_id,
        "status": shipment.status.value,
        "carrier": shipment.carrier,
        "tracking_number": shipment.tracking_number,
        "lines": [dataclasses.asdict(line) for line in shipment.lines],
        "address": dataclasses.asdict(shipment.address) if shipment.address else None,
        "failure_reason": shipment.failure_reason,
        "dispatched_at": shipment.dispatched_at,
        "delivered_at": shipment.delivered_at,
        "last_event_at": shipment.last_event_at,
    }
