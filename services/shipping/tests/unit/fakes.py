"""An in-memory unit of work for the shipping service's handlers: shipments and return
parcels live in dictionaries; `commit` (oms_devtools' InMemoryUnitOfWork) runs the service's own
event map over the parcels and orders loaded, as the real one does (a parcel's
announcements first, then the order's answer), minus Postgres and its locks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from oms_devtools.fakes import InMemoryUnitOfWork, TrackingRepository
from oms_shipping.domain.model import OrderParcels, Shipment, TrackingEvent
from oms_shipping.domain.returns import ReturnParcel
from oms_shipping.handlers.outgoing import ShipmentEvents

from .parcels import counted_ids


class FakeShipments:
    def __init__(self, shipments: Sequence[Shipment] = ()) -> None:
        self.by_id = {shipment.id: shipment for shipment in shipments}
        self.timelines: dict[str, list[TrackingEvent]] = {}
        self.webhooks: set[str] = set()
        self._new_id = counted_ids()
        self._loaded: list[Shipment] = []
        self._orders: list[OrderParcels] = []

    @property
    def tracked(self) -> list[Any]:
        parcels = {id(shipment): shipment for shipment in self._loaded}
        for order in self._orders:
            parcels.update((id(parcel), parcel) for parcel in order.parcels)
        return [*parcels.values(), *self._orders]

    @tracked.setter
    def tracked(self, value: list[Any]) -> None:
        self._loaded = []
        self._orders = []

    def store(self) -> None:
        for order in self._orders:
            for parcel in order.parcels:
                self.by_id[parcel.id] = parcel
        for shipment in self._loaded:
            self.timelines.setdefault(shipment.id, []).extend(shipment.new_tracking_events)
            shipment.new_tracking_events.clear()

    async def of_order(self, order_id: str) -> OrderParcels:
        parcels = [s for s in self.by_id.values() if s.order_id == order_id]
        order = OrderParcels(order_id, parcels, new_id=self._new_id)
        self._orders.append(order)
        return order

    async def get(self, shipment_id: str, *, for_update: bool = False) -> Shipment | None:
        shipment = self.by_id.get(shipment_id)
        if shipment is not None and for_update and shipment not in self._loaded:
            self._loaded.append(shipment)
        return shipment

    async def has_tracking_event(self, shipment_id: str, event: TrackingEvent) -> bool:
        return event in self.timelines.get(shipment_id, [])

    async def remember_webhook(self, webhook_id: str, shipment_id: str) -> bool:
        if webhook_id in self.webhooks:
            return False
        self.webhooks.add(webhook_id)
        return True

    async def forget_webhooks_before(self, before: datetime) -> None:
        pass

    def parcel(self, fulfillment_id: str) -> Shipment:
        found = [s for s in self.by_id.values() if s.fulfillment_id == fulfillment_id]
        assert len(found) == 1, f"{len(found)} shipments of parcel {fulfillment_id}"
        return found[0]


class FakeReturns:
    def __init__(self) -> None:
        self.by_id: dict[str, ReturnParcel] = {}
        self._loaded: list[ReturnParcel] = []
        self._added: list[ReturnParcel] = []

    @property
    def tracked(self) -> list[Any]:
        return [*self._loaded, *self._added]

    @tracked.setter
    def tracked(self, value: list[Any]) -> None:
        # The transaction ended: what it added without committing is gone.
        self._loaded = []
        self._added = []

    async def get(self, return_id: str, *, for_update: bool = False) -> ReturnParcel | None:
        found = self.by_id.get(return_id)
        if found is None:
            found = next((parcel for parcel in self._added if parcel.id == return_id), None)
        if found is not None and for_update and found not in self.tracked:
            self._loaded.append(found)
        return found

    def add(self, parcel: ReturnParcel) -> None:
        self._added.append(parcel)

    async def of_order(self, order_id: str) -> list[ReturnParcel]:
        found = [parcel for parcel in self.by_id.values() if parcel.order_id == order_id]
        self._loaded.extend(parcel for parcel in found if parcel not in self._loaded)
        return found

    def store(self) -> None:
        """What the commit keeps: the parcels added (changed ones live on)."""
        for parcel in self._added:
            self.by_id[parcel.id] = parcel
        self._added.clear()


class FakeShippingUnitOfWork(InMemoryUnitOfWork):
    def __init__(self, *shipments: Shipment) -> None:
        super().__init__(ShipmentEvents())
        self.shipments = FakeShipments(shipments)
        self.returns = FakeReturns()

    def repositories(self) -> Sequence[TrackingRepository]:
        return [self.shipments, self.returns]

    def stored(self) -> None:
        self.shipments.store()
        self.returns.store()
