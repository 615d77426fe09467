"""What the shipping service's handlers need of a unit of work: its shipments, and
`commit`. Postgres provides it in production (`db/unit_of_work.py`)."""

from __future__ import annotations

from typing import Protocol

from oms_runtime.messaging.unit_of_work import AbstractUnitOfWork
from oms_shipping.domain.model import Shipment, TrackingEvent


class Shipments(Protocol):
    async def get(self, shipment_id: str, *, for_update: bool = False) -> Shipment | None: ...

    async def get_by_order(self, order_id: str, *, for_update: bool = False) -> Shipment | None: ...

    def add(self, shipment: Shipment) -> None: ...

    async def has_tracking_event(self, shipment_id: str, event: TrackingEvent) -> bool: ...


class ShippingUnitOfWork(AbstractUnitOfWork, Protocol):
    """One transaction. On `commit` the shipments it loaded or added are written back
    with the messages their events cause."""

    @property
    def shipments(self) -> Shipments: ...
