"""An in-memory unit of work for the inventory's handlers: its repositories are
dictionaries; `commit` (oms_devtools' InMemoryUnitOfWork) runs the service's own
event map (messages and follow-ups) over what they track, as the real one does,
minus Postgres."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from oms_devtools.fakes import InMemoryUnitOfWork, TrackingRepository
from oms_inventory.domain.model import Product, Replenishment, Reservation
from oms_inventory.handlers.outgoing import InventoryEvents


class FakeProducts:
    def __init__(self, products: list[Product]) -> None:
        self.by_sku = {product.sku: product for product in products}
        self.tracked: list[Any] = []

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


class FakeReplenishments:
    def __init__(self) -> None:
        self.open_for: dict[str, Replenishment] = {}
        self.tracked: list[Any] = []
        self.receipts: set[tuple[str, str]] = set()

    async def open(self, replenishment: Replenishment) -> bool:
        if replenishment.sku in self.open_for:
            return False
        self.open_for[replenishment.sku] = replenishment
        self.tracked.append(replenishment)
        return True

    async def fulfil(self, sku: str, reference: str | None) -> None:
        self.open_for.pop(sku, None)

    async def claim_receipt(self, sku: str, reference: str, quantity: int) -> bool:
        if (sku, reference) in self.receipts:
            return False
        self.receipts.add((sku, reference))
        return True


class FakeInventoryUnitOfWork(InMemoryUnitOfWork):
    def __init__(
        self, products: list[Product] | None = None, reservations: list[Reservation] | None = None
    ) -> None:
        super().__init__(InventoryEvents())
        self.products = FakeProducts(products or [])
        self.reservations = FakeReservations(reservations or [])
        self.replenishments = FakeReplenishments()
        self.reservation_ttl = timedelta(days=7)

    def repositories(self) -> Sequence[TrackingRepository]:
        return [self.products, self.reservations, self.replenishments]

    def stored(self) -> None:
        # An absent reservation stands for nothing: only real ones are kept.
        for reservation in self.reservations.tracked:
            if reservation.exists:
                self.reservations.by_order[reservation.order_id] = reservation
