"""Maps shipments and their tracking timeline to tables."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from oms_runtime.repository import Repository, Row
from oms_shipping.db.tables import seen_webhooks, shipments, tracking_events
from oms_shipping.domain.model import Address, Line, Shipment, ShipmentStatus, TrackingEvent

# Built once: every saga step that reaches shipping runs them.
_GET_BY_ORDER = select(shipments).where(shipments.c.order_id == bindparam("b_order_id"))
_GET_BY_ORDER_FOR_UPDATE = _GET_BY_ORDER.with_for_update()
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


class ShipmentRepository(Repository[Shipment]):
    table = shipments
    key = "id"

    async def get(self, shipment_id: str, *, for_update: bool = False) -> Shipment | None:
        try:
            key = uuid.UUID(shipment_id)
        except ValueError:
            return None
        return await self._get(key, for_update=for_update)

    async def get_by_order(self, order_id: str, *, for_update: bool = False) -> Shipment | None:
        statement = _GET_BY_ORDER_FOR_UPDATE if for_update else _GET_BY_ORDER
        found = await self._find(statement, {"b_order_id": order_id}, locked=for_update)
        return found[0] if found else None

    def add(self, shipment: Shipment) -> None:
        self._add(shipment)

    async def has_tracking_event(self, shipment_id: str, event: TrackingEvent) -> bool:
        found = await self._connection.scalar(
            select(tracking_events.c.id).where(
                tracking_events.c.shipment_id == uuid.UUID(shipment_id),
                tracking_events.c.status == event.status.value,
                tracking_events.c.occurred_at == event.occurred_at,
            )
        )
        return found is not None

    def _key_of(self, shipment: Shipment) -> uuid.UUID:
        return uuid.UUID(shipment.id)

    def _to_row(self, shipment: Shipment) -> Row:
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

    def _from_row(self, row: Mapping[str, Any]) -> Shipment:
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

    def _update_of(self, shipment: Shipment, row: Row, changed: set[str]) -> Row:
        # The order a shipment is for never changes.
        return {name: value for name, value in row.items() if name != "order_id"}

    async def _write_along(self, shipment: Shipment) -> None:
        if shipment.new_tracking_events:
            # At once, with the carrier's repeats ignored: a webhook is delivered
            # at least once.
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

    async def remember_webhook(self, webhook_id: str, shipment_id: str) -> bool:
        """Record a carrier webhook id; False if it was seen before (a replay)."""
        inserted = await self._connection.scalar(
            _REMEMBER_WEBHOOK, {"webhook_id": webhook_id, "shipment_id": uuid.UUID(shipment_id)}
        )
        return inserted is not None

    async def forget_webhooks_before(self, before: datetime) -> None:
        await self._connection.execute(_FORGET_WEBHOOKS, {"b_before": before})
