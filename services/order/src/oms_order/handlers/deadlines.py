"""Sagas whose step is past its deadline, and idempotency keys past theirs.

Deadlines live in the orders table, so a restarted (or another) order service
finds them; `SKIP LOCKED` lets several replicas sweep side by side. The loop that
calls these is `workers/deadline_sweeper.py`.
"""

from __future__ import annotations

import logging

from oms_order.handlers.unit_of_work import OrderUnitOfWork
from oms_runtime.logging import log_context

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
        await uow.commit()
    return len(overdue)


async def forget_old_idempotency_keys(uow: OrderUnitOfWork) -> int:
    async with uow:
        purged = await uow.idempotency.purge(uow.idempotency_ttl)
        await uow.commit()
    return purged
