from __future__ import annotations

from typing import Self

from oms_runtime.messaging.unit_of_work import UnitOfWork
from oms_shipping.db.repository import ShipmentRepository


class ShippingUnitOfWork(UnitOfWork):
    shipments: ShipmentRepository

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.shipments = ShipmentRepository(self.connection)
        return self
