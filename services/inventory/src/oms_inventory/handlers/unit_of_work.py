"""What the inventory service's handlers need of a unit of work: its products,
reservations and replenishment requests, and `commit`. Postgres provides it in
production (`db/unit_of_work.py`), dictionaries in the handler tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Protocol

from oms_inventory.domain.model import Product, Replenishment, Reservation
from oms_runtime.messaging.unit_of_work import AbstractUnitOfWork


class Products(Protocol):
    async def add(self, product: Product) -> bool:
        """False if the SKU exists already."""
        ...

    async def get(self, sku: str, *, for_update: bool = False) -> Product | None: ...

    async def get_many(
        self, skus: Iterable[str], *, for_update: bool = False
    ) -> dict[str, Product]: ...

    async def needing_low_stock_review(self, limit: int) -> list[Product]: ...


class Reservations(Protocol):
    async def for_order(self, order_id: str) -> Reservation:
        """Locked; an absent one if nothing was asked for the order yet."""
        ...

    async def expired(self, limit: int) -> list[Reservation]: ...


class Replenishments(Protocol):
    async def open(self, replenishment: Replenishment) -> bool:
        """False if one is open for the SKU already."""
        ...

    async def fulfil(self, sku: str, reference: str | None) -> None: ...

    async def claim_receipt(self, sku: str, reference: str, quantity: int) -> bool:
        """False if this delivery was counted before."""
        ...


class InventoryUnitOfWork(AbstractUnitOfWork, Protocol):
    """One transaction. On `commit` what it loaded or added is written back, with
    the ledger and the messages their events cause."""

    @property
    def products(self) -> Products: ...

    @property
    def reservations(self) -> Reservations: ...

    @property
    def replenishments(self) -> Replenishments: ...

    @property
    def reservation_ttl(self) -> timedelta: ...
