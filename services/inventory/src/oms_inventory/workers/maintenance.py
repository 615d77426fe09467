"""The inventory's own periodic work: expired reservations, the low-stock check."""

from __future__ import annotations

from oms_inventory.db.unit_of_work import SqlInventoryUnitOfWork
from oms_inventory.handlers.stock import expire_reservations, review_low_stock
from oms_runtime.messaging.unit_of_work import UnitOfWorkFactory
from oms_runtime.service import PeriodicWorker


class InventoryMaintenance(PeriodicWorker):
    name = "inventory check"

    def __init__(
        self, unit_of_work: UnitOfWorkFactory[SqlInventoryUnitOfWork], interval: float
    ) -> None:
        super().__init__(interval)
        self._unit_of_work = unit_of_work

    async def work(self) -> bool:
        while await expire_reservations(self._unit_of_work()):
            pass
        while await review_low_stock(self._unit_of_work()):
            pass
        return False
