"""An in-memory unit of work for the inventory's handlers: its repositories are
dictionaries; `commit` (oms_devtools' InMemoryUnitOfWork) runs the service's own
event map (messages and follow-ups) over what they track, as the real one does,
minus Postgres."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from oms_devtools.fakes import InMemoryUnitOfWork, TrackingRepository
from oms_inventory.domain.allocation import Location
from oms_inventory.domain.model import (
    DEFAULT,
    Product,
    Replenishment,
    Reservation,
    StockLevel,
    StockReturn,
)
from oms_inventory.handlers.outgoing import InventoryEvents


class FakeLocations:
    def __init__(self, locations: list[Location]) -> None:
        self.by_code = {location.code: location for location in [DEFAULT, *locations]}
        self.tracked: list[Any] = []

    async def add(self, location: Location, name: str) -> bool:
        if location.code in self.by_code:
            return False
        self.by_code[location.code] = location
        return True

    async def get_many(self, codes: Iterable[str]) -> dict[str, Location]:
        return {code: self.by_code[code] for code in codes if code in self.by_code}


class FakeProducts:
    def __init__(self, products: list[Product], locations: FakeLocations) -> None:
        self.by_sku = {product.sku: product for product in products}
        self.tracked: list[Any] = []
        self._locations = locations

    async def add(self, product: Product) -> bool:
        if product.sku in self.by_sku:
            return False
        self.by_sku[product.sku] = product
        self.tracked.append(product)
        return True

    async def get(self, sku: str, *, for_update: bool = False) -> Product | None:
        found = await self.get_many([sku], for_update=for_update)
        return found.get(sku)

    async def get_many(
        self, skus: Iterable[str], *, for_update: bool = False
    ) -> dict[str, Product]:
        found = {sku: self.by_sku[sku] for sku in sorted(set(skus)) if sku in self.by_sku}
        if for_update:
            self.tracked.extend(p for p in found.values() if p not in self.tracked)
        return found

    async def get_to_edit(self, sku: str) -> Product | None:
        return await self.get(sku, for_update=True)

    async def open_level(self, product: Product, location: str) -> bool:
        if location not in self._locations.by_code:
            return False
        product.levels.setdefault(location, StockLevel(self._locations.by_code[location]))
        return True

    async def needing_low_stock_review(self, limit: int) -> list[Product]:
        return []


class FakeReservations:
    def __init__(self, reservations: list[Reservation]) -> None:
        self.by_order = {reservation.order_id: reservation for reservation in reservations}
        self.tracked: list[Any] = []

    async def for_order(self, order_id: str) -> Reservation:
        reservation = self.by_order.get(order_id) or Reservation.absent(order_id)
        self.tracked.append(reservation)
        return reservation

    async def expired(self, limit: int) -> list[Reservation]:
        due = [r for r in self.by_order.values() if r.holds_stock][:limit]
        self.tracked.extend(due)
        return due


class FakeStockReturns:
    def __init__(self) -> None:
        self.by_return: dict[str, StockReturn] = {}
        self.tracked: list[Any] = []

    async def for_return(self, return_id: str, order_id: str) -> StockReturn:
        booking = self.by_return.get(return_id) or StockReturn.absent(return_id, order_id)
        self.tracked.append(booking)
        return booking


class FakeReplenishments:
    def __init__(self) -> None:
        # Open requests by (sku, location).
        self.open_for: dict[tuple[str, str], Replenishment] = {}
        self.tracked: list[Any] = []
        self.receipts: set[tuple[str, str, str]] = set()

    async def open(self, replenishment: Replenishment) -> bool:
        key = (replenishment.sku, replenishment.location)
        if key in self.open_for:
            return False
        self.open_for[key] = replenishment
        self.tracked.append(replenishment)
        return True

    async def fulfil(self, sku: str, reference: str | None, location: str) -> None:
        self.open_for.pop((sku, location), None)

    async def claim_receipt(self, sku: str, reference: str, quantity: int, location: str) -> bool:
        if (sku, reference, location) in self.receipts:
            return False
        self.receipts.add((sku, reference, location))
        return True


class FakeInventoryUnitOfWork(InMemoryUnitOfWork):
    def __init__(
        self,
        products: list[Product] | None = None,
        reservations: list[Reservation] | None = None,
        locations: list[Location] | None = None,
    ) -> None:
        super().__init__(InventoryEvents())
        self.locations = FakeLocations(locations or [])
        self.products = FakeProducts(products or [], self.locations)
        self.reservations = FakeReservations(reservations or [])
        self.stock_returns = FakeStockReturns()
        self.replenishments = FakeReplenishments()
        self.reservation_ttl = timedelta(days=7)

    def repositories(self) -> Sequence[TrackingRepository]:
        return [
            self.locations,
            self.products,
            self.reservations,
            self.stock_returns,
            self.replenishments,
        ]

    def stored(self) -> None:
        # An absent reservation stands for nothing: only real ones are kept.
        for reservation in self.reservations.tracked:
            if reservation.exists:
                self.reservations.by_order[reservation.order_id] = reservation
        for booking in self.stock_returns.tracked:
            if booking.booked:
                self.stock_returns.by_return[booking.return_id] = booking
