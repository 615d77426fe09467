from __future__ import annotations

from typing import Self

from oms_order.db.repository import OrderRepository
from oms_runtime.messaging.unit_of_work import UnitOfWork


class OrderUnitOfWork(UnitOfWork):
    orders: OrderRepository

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.orders = OrderRepository(self.connection)
        return self
