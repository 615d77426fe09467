"""What the shipping service's handlers need of a unit of work: its shipments (one
per parcel), its return parcels, and `commit`. Postgres provides it in production
(`db/unit_of_work.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from oms_runtime.messaging.unit_of_work import AbstractUnitOfWork
from oms_shipping.domain.model import OrderParcels, Shipment, TrackingEvent
from oms_shipping.domain.returns import ReturnParcel


class Shipments(Protocol):
    async def get(self, shipment_id: str, *, for_update: bool = False) -> Shipment | None: ...

    async def of_order(self, order_id: str) -> OrderParcels:
        """Every parcel of the order, for update (none: no parcel asked for yet); the
        order stays locked until the commit, so no other command about it (a new
        parcel, a cancellation) runs meanwhile. New parcels are written on commit."""
        ...

    async def has_tracking_event(self, shipment_id: str, event: TrackingEvent) -> bool: ...

    async def remember_webhook(self, webhook_id: str, shipment_id: str) -> bool:
        """Record a carrier webhook id; False if it was seen before (a replay)."""
        ...

    async def forget_webhooks_before(self, before: datetime) -> None: ...


class Returns(Protocol):
    async def get(self, return_id: str, *, for_update: bool = False) -> ReturnParcel | None:
        """The return parcel; `for_update`: locked until the commit, also while it does
        not exist yet, so that a label request and a cancellation of one return (or a
        cancellation and the warehouse's receipt) never both miss the other."""
        ...

    def add(self, parcel: ReturnParcel) -> None:
        """A new return parcel, written on commit."""
        ...

    async def of_order(self, order_id: str) -> list[ReturnParcel]:
        """Every return parcel of the order, for update."""
        ...


class ShippingUnitOfWork(AbstractUnitOfWork, Protocol):
    """One transaction. On `commit` the shipments it loaded or added are written back
    with the messages their events cause."""

    @property
    def shipments(self) -> Shipments: ...

    @property
    def returns(self) -> Returns: ...
