"""What the inventory service's handlers need of a unit of work: its locations,
products, reservations, booked returns and replenishment requests, and `commit`. Postgres provides
it in production (`db/unit_of_work.py`), dictionaries in the handler tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Protocol

from oms_inventory.domain.allocation import Location
from oms_inventory.domain.model import Product, Replenishment, Reservation, StockReturn
from oms_runtime.messaging.unit_of_work import AbstractUnitOfWork


class Locations(Protocol):
    async def add(self, location: Location, name: str) -> bool:
        """False if the code is taken."""
        ...

    async def get_many(self, codes: Iterable[str]) -> dict[str, Location]:
        """Those that exist, by code."""
        ...


class Products(Protocol):
    async def add(self, product: Product) -> bool:
        """False if the SKU exists already."""
        ...

    async def get(self, sku: str, *, for_update: bool = False) -> Product | None: ...

    async def get_to_edit(self, sku: str) -> Product | None:
        """For update, its own row locked too (staff edits of name, price, rules)."""
        ...

    async def get_many(
        self, skus: Iterable[str], *, for_update: bool = False
    ) -> dict[str, Product]:
        """For update: their stock at every location locked, in (sku, location) order."""
        ...

    async def open_level(self, product: Product, location: str) -> bool:
        """Give `product` (read for update) a stock record at `location` (empty) if
        it has none; False if there is no such location."""
        ...

    async def needing_low_stock_review(self, limit: int) -> list[Product]: ...


class Reservations(Protocol):
    async def for_order(self, order_id: str) -> Reservation:
        """Locked; an absent one if nothing was asked for the order yet."""
        ...

    async def expired(self, limit: int) -> list[Reservation]: ...


class StockReturns(Protocol):
    async def for_return(self, return_id: str, order_id: str) -> StockReturn:
        """Locked; an absent one (nothing booked) if the return was never booked."""
        ...


class Replenishments(Protocol):
    async def open(self, replenishment: Replenishment) -> bool:
        """False if one is open for the SKU at that location already."""
        ...

    async def fulfil(self, sku: str, reference: str | None, location: str) -> None: ...

    async def claim_receipt(self, sku: str, reference: str, quantity: int, location: str) -> bool:
        """False if this delivery to `location` was counted before."""
        ...


class InventoryUnitOfWork(AbstractUnitOfWork, Protocol):
    """One transaction. On `commit` what it loaded or added is written back, with
    the ledger and the messages their events cause."""

    @property
    def locations(self) -> Locations: ...

    @property
    def products(self) -> Products: ...

    @property
    def reservations(self) -> Reservations: ...

    @property
    def stock_returns(self) -> StockReturns: ...

    @property
    def replenishments(self) -> Replenishments: ...

    @property
    def reservation_ttl(self) -> timedelta: ...
