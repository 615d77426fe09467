"""The shipping service's unit of work over Postgres (what handlers see of it:
`handlers/unit_of_work.py`)."""

from __future__ import annotations

from typing import Self

from oms_runtime.messaging.unit_of_work import UnitOfWork
from oms_shipping.db.repository import ReturnRepository, ShipmentRepository


class SqlShippingUnitOfWork(UnitOfWork):
    shipments: ShipmentRepository
    returns: ReturnRepository

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.shipments = ShipmentRepository(self)
        self.returns = ReturnRepository(self)
        return self
