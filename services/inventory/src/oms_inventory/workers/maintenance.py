"""The inventory's own periodic work: expired reservations, the low-stock check."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from oms_inventory.db.unit_of_work import SqlInventoryUnitOfWork
from oms_inventory.handlers.stock import expire_reservations, review_low_stock
from oms_runtime.messaging.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)


class InventoryMaintenance:
    def __init__(
        self, unit_of_work: UnitOfWorkFactory[SqlInventoryUnitOfWork], interval: float
    ) -> None:
        self._unit_of_work = unit_of_work
        self._interval = interval
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        while not self._stopped.is_set():
            try:
                while await expire_reservations(self._unit_of_work()):
                    pass
                while await review_low_stock(self._unit_of_work()):
                    pass
            except Exception as exc:  # keep checking through a database outage
                log.warning("inventory check failed", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self._interval)

    async def stop(self) -> None:
        self._stopped.set()
