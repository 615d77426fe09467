"""The order service's unit of work over Postgres (what handlers see of it:
`handlers/unit_of_work.py`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Self

from oms_contracts.reasons import known_or_other
from oms_order.db.repository import IdempotencyKeys, OrderRepository, ReturnRepository
from oms_order.domain.deadlines import SagaDeadlines
from oms_order.domain.model import Order, OrderStatus
from oms_order.domain.returns import ReturnPolicy
from oms_runtime import metrics
from oms_runtime.messaging.unit_of_work import UnitOfWork
from oms_runtime.repository import Row


class SqlOrderUnitOfWork(UnitOfWork):
    orders: OrderRepository
    returns: ReturnRepository
    idempotency: IdempotencyKeys

    def __init__(
        self,
        *args: Any,
        deadlines: SagaDeadlines,
        idempotency_ttl: timedelta = timedelta(hours=24),
        return_policy: ReturnPolicy = ReturnPolicy(),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        # Every commit re-arms the deadline of the orders whose step changed, so the
        # policy travels with the unit of work rather than with each caller.
        self.deadlines = deadlines
        self.idempotency_ttl = idempotency_ttl
        self.return_policy = return_policy

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.orders = OrderRepository(self)
        self.returns = ReturnRepository(self)
        self.idempotency = IdempotencyKeys(self.connection)
        return self

    async def commit(self) -> None:
        now = datetime.now(UTC)
        for order, row in self.orders.read():
            if order.step_changed:
                order.arm_deadline(now, self.deadlines.wait_for(order))
            if row is not None:
                self._measure_step(order, row)
        await super().commit()

    def _measure_step(self, order: Order, row: Row) -> None:
        """Time spent in the step the order left; the outcome if its saga ended.
        Counted once committed, so a step rolled back and done again counts once."""
        previous = OrderStatus(row["status"])
        if previous is order.status or order.status_changed_at is None:
            return
        step = metrics.SAGA_STEP_SECONDS.labels(previous.value, order.status.value)
        seconds = (order.status_changed_at - row["status_changed_at"]).total_seconds()
        self.after_commit(lambda: step.observe(seconds))
        if order.is_terminal:
            outcome = metrics.SAGA_OUTCOMES.labels(
                order.status.value, known_or_other(order.status_reason)
            )
            self.after_commit(outcome.inc)
