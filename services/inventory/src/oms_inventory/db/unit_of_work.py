"""The inventory service's unit of work over Postgres (what handlers see of it:
`handlers/unit_of_work.py`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Self

from oms_inventory.db.repository import (
    LocationRepository,
    ProductRepository,
    ReplenishmentRepository,
    ReservationRepository,
    StockReturnRepository,
)
from oms_runtime.messaging.unit_of_work import UnitOfWork


class SqlInventoryUnitOfWork(UnitOfWork):
    locations: LocationRepository
    products: ProductRepository
    reservations: ReservationRepository
    stock_returns: StockReturnRepository
    replenishments: ReplenishmentRepository

    def __init__(self, *args: Any, reservation_ttl: timedelta, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reservation_ttl = reservation_ttl

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.locations = LocationRepository(self)
        self.products = ProductRepository(self)
        self.reservations = ReservationRepository(self)
        self.stock_returns = StockReturnRepository(self)
        self.replenishments = ReplenishmentRepository(self)
        return self
