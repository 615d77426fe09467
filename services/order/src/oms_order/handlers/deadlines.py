"""The sweeper: finds sagas whose step is past its deadline and moves them on.

Deadlines live in the orders table, so a restarted (or another) order service
finds them; `SKIP LOCKED` lets several replicas sweep side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from oms_order.db.unit_of_work import OrderUnitOfWork
from oms_order.handlers.outgoing import stage_order
from oms_runtime.logging import log_context
from oms_runtime.messaging.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)


async def sweep_overdue(uow: OrderUnitOfWork, batch_size: int = 50) -> int:
    """Apply `deadline_passed` to one batch of overdue orders; returns how many."""
    async with uow:
        overdue = await uow.orders.overdue(batch_size)
        for order in overdue:
            with log_context(correlation_id=order.id):
                log.warning(
                    "saga step overdue",
                    extra={"status": order.status.value, "attempt": order.step_attempts},
                )
            order.deadline_passed(uow.deadlines.max_attempts)
            await stage_order(uow, order)
        await uow.commit()
    return len(overdue)


async def forget_old_idempotency_keys(uow: OrderUnitOfWork) -> int:
    async with uow:
        purged = await uow.idempotency.purge(uow.idempotency_ttl)
        await uow.commit()
    return purged


class DeadlineSweeper:
    """Moves overdue sagas on; now and then also forgets expired idempotency keys."""

    PURGE_EVERY_SECONDS = 300.0

    def __init__(self, unit_of_work: UnitOfWorkFactory[OrderUnitOfWork], interval: float) -> None:
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
