"""Maps shipments and their tracking timeline, and return parcels, to tables."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Text, bindparam, column, delete, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from oms_contracts import Envelope
from oms_runtime.messaging.unit_of_work import SharedTransaction, UnitOfWork
from oms_runtime.repository import Repository, Row
from oms_shipping.db.tables import returns, seen_webhooks, shipments, tracking_events
from oms_shipping.domain.model import (
    Address,
    Line,
    OrderParcels,
    Shipment,
    ShipmentStatus,
    TrackingEvent,
)
from oms_shipping.domain.returns import (
    AnnouncedLine,
    Condition,
    ReceivedLine,
    ReturnParcel,
    ReturnStatus,
)

# Keeps the orders' advisory locks apart from any other use of advisory locks.
_LOCK_SEED = 0x5319_0015

# Built once: every saga step that reaches shipping runs them.
# Held until the commit: commands about one order's parcels run one at a time, also
# when none exists yet (a creation and a cancellation of the whole order must not
# both miss the other).
_LOCK_ORDER = select(
    func.pg_advisory_xact_lock(func.hashtextextended(bindparam("b_order_id"), _LOCK_SEED))
)
# Several orders' locks, taken in the order of the (sorted) array, as one message's
# `_LOCK_ORDER` would take each.
_LOCK_ORDERS = select(
    func.pg_advisory_xact_lock(func.hashtextextended(column("o"), _LOCK_SEED))
).select_from(func.unnest(bindparam("b_order_ids", type_=ARRAY(Text))).alias("o"))
_PARCELS_OF_ORDER = (
    select(shipments)
    .where(shipments.c.order_id == bindparam("b_order_id"))
    .order_by(shipments.c.created_at, shipments.c.fulfillment_id)
    .with_for_update()
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


async def load_shipments_for_batch(shared: SharedTransaction, envelopes: list[Envelope]) -> None:
    """Lock the orders a batch of commands is about (in order id order) and read and
    lock their parcels, a statement each; the batch's handlers then find them in
    memory instead of two statements per message."""
    order_ids = sorted(
        {
            order_id
            for order_id in (envelope.data.get("order_id") for envelope in envelopes)
            if isinstance(order_id, str)
        }
    )
    if not order_ids:
        return
    await shared.connection.execute(_LOCK_ORDERS, {"b_order_ids": order_ids})
    await ShipmentRepository.preload_all_by(shared, "order_id", order_ids)


def _stored_order(row: Row) -> tuple[int, Any, bool, str]:
    """Where a parcel's row sorts among its order's: as `_PARCELS_OF_ORDER` sorts
    them, and after them those not written yet (no `created_at`), as added."""
    created_at = row.get("created_at")
    if created_at is None:
        return (1, 0, False, "")
    fulfillment_id = row["fulfillment_id"]
    return (0, created_at, fulfillment_id is None, fulfillment_id or "")


class ShipmentRepository(Repository[Shipment]):
    table = shipments
    key = "id"

    def __init__(self, unit_of_work: UnitOfWork) -> None:
        super().__init__(unit_of_work)
        self._orders: list[OrderParcels] = []

    async def get(self, shipment_id: str, *, for_update: bool = False) -> Shipment | None:
        try:
            key = uuid.UUID(shipment_id)
        except ValueError:
            return None
        return await self._get(key, for_update=for_update)

    async def of_order(self, order_id: str) -> OrderParcels:
        """Every parcel of the order, locked with the order (see `_LOCK_ORDER`)."""
        if order_id in self._unit_of_work.rows.loaded_by(shipments, "order_id"):
            # Locked and read by the batch loader.
            parcels = []
            found: set[uuid.UUID] = set()
        else:
            parameters = {"b_order_id": order_id}
            await self._connection.execute(_LOCK_ORDER, parameters)
            parcels = await self._find(_PARCELS_OF_ORDER, parameters, locked=True)
            found = {uuid.UUID(parcel.id) for parcel in parcels}
        # Those the batch loader read, in the order the statement above gives, then
        # those an earlier message of the batch added (not written yet).
        cached = [
            (key, row)
            for key, row in self._rows.items()
            if row is not None and row["order_id"] == order_id and key not in found
        ]
        cached.sort(key=lambda item: _stored_order(item[1]))
        for key, row in cached:
            parcels.append(self._tracked_or_track(key, row))
        order = OrderParcels(order_id, parcels)
        self._orders.append(order)
        return order

    def _tracked_or_track(self, key: uuid.UUID, row: Row) -> Shipment:
        tracked = self._tracked.get(key)
        return tracked.aggregate if tracked is not None else self._track(row)

    def tracked(self) -> list[Any]:
        """The parcels this unit of work may change (those an order's parcels gained
        included), then the orders' parcels as a whole, whose answers follow what
        their parcels announced."""
        self._track_new_parcels()
        return [*super().tracked(), *self._orders]

    async def flush(self) -> None:
        self._track_new_parcels()
        await super().flush()

    def _track_new_parcels(self) -> None:
        for order in self._orders:
            for parcel in order.parcels:
                if uuid.UUID(parcel.id) not in self._tracked:
                    self._add(parcel)

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
            "fulfillment_id": shipment.fulfillment_id,
            "location": shipment.location,
            "order_cancelled": shipment.order_cancelled,
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
            fulfillment_id=row["fulfillment_id"],
            location=row["location"],
            order_cancelled=row["order_cancelled"],
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
        # The order and parcel a shipment is for never change.
        return {
            name: value for name, value in row.items() if name not in ("order_id", "fulfillment_id")
        }

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


# Keeps the returns' advisory locks apart from the orders' and any other use.
_RETURN_LOCK_SEED = 0x5319_0016

# Held until the commit: the commands about one return (and the warehouse's receipt)
# run one at a time, also while it has no row yet (a label request and the
# cancellation that overtook it must not both miss the other).
_LOCK_RETURN = select(
    func.pg_advisory_xact_lock(func.hashtextextended(bindparam("b_return_id"), _RETURN_LOCK_SEED))
)
_RETURNS_OF_ORDER = (
    select(returns)
    .where(returns.c.order_id == bindparam("b_order_id"))
    .order_by(returns.c.id)
    .with_for_update()
)


class ReturnRepository(Repository[ReturnParcel]):
    table = returns
    key = "id"

    async def get(self, return_id: str, *, for_update: bool = False) -> ReturnParcel | None:
        """The return; `for_update`: locked with its id (see `_LOCK_RETURN`), whether
        or not it exists yet."""
        if for_update:
            await self._connection.execute(_LOCK_RETURN, {"b_return_id": return_id})
        return await self._get(return_id, for_update=for_update)

    def add(self, parcel: ReturnParcel) -> None:
        self._add(parcel)

    async def of_order(self, order_id: str) -> list[ReturnParcel]:
        """Every return of the order, for update."""
        found = await self._find(_RETURNS_OF_ORDER, {"b_order_id": order_id}, locked=True)
        # Returns an earlier message of the batch added are not written yet.
        seen = {parcel.id for parcel in found}
        for key, row in list(self._rows.items()):
            if row is not None and row["order_id"] == order_id and key not in seen:
                tracked = self._tracked.get(key)
                found.append(tracked.aggregate if tracked is not None else self._track(row))
        return found

    def _key_of(self, parcel: ReturnParcel) -> str:
        return parcel.id

    def _to_row(self, parcel: ReturnParcel) -> Row:
        return {
            "id": parcel.id,
            "order_id": parcel.order_id,
            "status": parcel.status.value,
            "return_tracking_number": parcel.return_tracking_number,
            "lines": [dataclasses.asdict(line) for line in parcel.lines],
            "received": [
                {"sku": line.sku, "quantity": line.quantity, "condition": line.condition.value}
                for line in parcel.received
            ],
            "pickup_address": (
                dataclasses.asdict(parcel.pickup_address) if parcel.pickup_address else None
            ),
            "received_at": parcel.received_at,
        }

    def _from_row(self, row: Mapping[str, Any]) -> ReturnParcel:
        return ReturnParcel(
            id=row["id"],
            order_id=row["order_id"],
            status=ReturnStatus(row["status"]),
            lines=[AnnouncedLine(**line) for line in row["lines"]],
            pickup_address=Address(**row["pickup_address"]) if row["pickup_address"] else None,
            return_tracking_number=row["return_tracking_number"],
            received=[
                ReceivedLine(line["sku"], line["quantity"], Condition(line["condition"]))
                for line in row["received"]
            ],
            received_at=row["received_at"],
        )
