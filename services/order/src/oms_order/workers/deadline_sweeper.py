"""The sweeper: moves sagas past their step's deadline on, any replica, any time."""

from __future__ import annotations

import asyncio

from oms_order.db.unit_of_work import SqlOrderUnitOfWork
from oms_order.handlers.deadlines import forget_old_idempotency_keys, sweep_overdue
from oms_order.handlers.returns import sweep_overdue_returns
from oms_runtime.messaging.unit_of_work import UnitOfWorkFactory
from oms_runtime.service import PeriodicWorker


class DeadlineSweeper(PeriodicWorker):
    """Moves overdue sagas (orders' and returns') on; now and then also forgets
    expired idempotency keys."""

    name = "deadline sweep"
    PURGE_EVERY_SECONDS = 300.0

    def __init__(
        self, unit_of_work: UnitOfWorkFactory[SqlOrderUnitOfWork], interval: float
    ) -> None:
        super().__init__(interval)
        self._unit_of_work = unit_of_work
        self._next_purge: float | None = None

    async def work(self) -> bool:
        swept = await sweep_overdue(self._unit_of_work())
        swept += await sweep_overdue_returns(self._unit_of_work())
        now = asyncio.get_running_loop().time()
        if self._next_purge is None or now >= self._next_purge:
            await forget_old_idempotency_keys(self._unit_of_work())
            self._next_purge = now + self.PURGE_EVERY_SECONDS
        return swept > 0
