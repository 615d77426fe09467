from __future__ import annotations

from datetime import timedelta
from typing import Any, Self

from oms_order.db.repository import IdempotencyKeys, OrderRepository
from oms_order.domain.deadlines import SagaDeadlines
from oms_runtime.messaging.unit_of_work import UnitOfWork


class OrderUnitOfWork(UnitOfWork):
    orders: OrderRepository
    idempotency: IdempotencyKeys

    def __init__(
        self,
        *args: Any,
        deadlines: SagaDeadlines,
        idempotency_ttl: timedelta = timedelta(hours=24),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        # Every save re-arms the saga's deadline, so the policy travels with the
        # unit of work rather than with each caller.
        self.deadlines = deadlines
        self.idempotency_ttl = idempotency_ttl

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.orders = OrderRepository(self.connection, self)
        self.idempotency = IdempotencyKeys(self.connection)
        return self
