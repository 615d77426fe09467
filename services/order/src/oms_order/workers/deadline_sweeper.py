"""The sweeper: moves sagas past their step's deadline on, any replica, any time."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from oms_order.db.unit_of_work import SqlOrderUnitOfWork
from oms_order.handlers.deadlines import forget_old_idempotency_keys, sweep_overdue
from oms_runtime.messaging.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)


class DeadlineSweeper:
    """Moves overdue sagas on; now and then also forgets expired idempotency keys."""

    PURGE_EVERY_SECONDS = 300.0

    def __init__(
        self, unit_of_work: UnitOfWorkFactory[SqlOrderUnitOfWork], interval: float
    ) -> None:
        self._unit_of_work = unit_of_work
        self._interval = interval
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_purge = loop.time()
        while not self._stopped.is_set():
            try:
                swept = await sweep_overdue(self._unit_of_work())
                if loop.time() >= next_purge:
                    await forget_old_idempotency_keys(self._unit_of_work())
                    next_purge = loop.time() + self.PURGE_EVERY_SECONDS
            except Exception as exc:  # keep sweeping through a database outage
                log.warning("deadline sweep failed", extra={"error": repr(exc)})
                swept = 0
            if swept == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), self._interval)

    async def stop(self) -> None:
        self._stopped.set()
