from __future__ import annotations

from typing import Self

from oms_inventory.db.repository import ProductRepository, ReservationRepository
from oms_runtime.messaging.unit_of_work import UnitOfWork


class InventoryUnitOfWork(UnitOfWork):
    products: ProductRepository
    reservations: ReservationRepository

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.products = ProductRepository(self.connection)
        self.reservations = ReservationRepository(self.connection)
        return self
