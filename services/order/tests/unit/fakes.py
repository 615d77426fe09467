"""An in-memory unit of work for the order service's handlers: its repositories are
dictionaries; `commit` (oms_devtools' InMemoryUnitOfWork) runs the service's own
event map over the orders it loaded or added, as the real one does, minus Postgres."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from oms_devtools.fakes import InMemoryUnitOfWork, TrackingRepository
from oms_order.domain.deadlines import SagaDeadlines
from oms_order.domain.model import Order
from oms_order.domain.returns import Return, ReturnPolicy
from oms_order.handlers.outgoing import OrderEvents

DEADLINES = SagaDeadlines(
    reservation=timedelta(seconds=30),
    payment=timedelta(seconds=90),
    shipment=timedelta(seconds=60),
    dispatch=timedelta(hours=72),
    settlement=timedelta(seconds=120),
    retry=timedelta(seconds=15),
    max_attempts=5,
)


class FakeOrders:
    def __init__(self, orders: list[Order]) -> None:
        self.by_id = {order.id: order for order in orders}
        self.tracked: list[Any] = []
        self.history: list[dict[str, Any]] = []

    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None:
        order = self.by_id.get(order_id)
        if order is not None and for_update and order not in self.tracked:
            self.tracked.append(order)
        return order

    def add(self, order: Order) -> None:
        self.by_id[order.id] = order
        self.tracked.append(order)

    async def overdue(self, limit: int) -> list[Order]:
        now = datetime.now(UTC)
        due = [o for o in self.by_id.values() if o.deadline_at and o.deadline_at <= now]
        self.tracked.extend(due[:limit])
        return due[:limit]

    def record_history(self, entry: dict[str, Any]) -> None:
        self.history.append(entry)


class FakeIdempotencyKeys:
    def __init__(self) -> None:
        self.claimed: dict[tuple[str, str, str], tuple[str, str]] = {}
        self.answers: dict[tuple[str, str, str], dict[str, Any]] = {}

    async def claim(
        self,
        principal: str,
        scope: str,
        key: str,
        request_hash: str,
        order_id: str,
        ttl: timedelta,
    ) -> bool:
        if (principal, scope, key) in self.claimed:
            return False
        self.claimed[principal, scope, key] = (request_hash, order_id)
        return True

    async def find(self, principal: str, scope: str, key: str) -> tuple[str, str] | None:
        return self.claimed.get((principal, scope, key))

    async def remember_answer(
        self, principal: str, scope: str, key: str, response: dict[str, Any]
    ) -> None:
        self.answers[principal, scope, key] = response

    async def first_answer(self, principal: str, scope: str, key: str) -> dict[str, Any] | None:
        return self.answers.get((principal, scope, key))

    async def purge(self, ttl: timedelta) -> int:
        return 0


class FakeReturns:
    def __init__(self) -> None:
        self.by_id: dict[str, Return] = {}
        self.tracked: list[Any] = []

    async def get(self, return_id: str, *, for_update: bool = False) -> Return | None:
        found = self.by_id.get(return_id)
        if found is not None and for_update and found not in self.tracked:
            self.tracked.append(found)
        return found

    def add(self, created: Return) -> None:
        self.by_id[created.id] = created
        self.tracked.append(created)

    async def of_order(self, order_id: str, *, for_update: bool = False) -> list[Return]:
        found = [r for r in self.by_id.values() if r.order_id == order_id]
        if for_update:
            self.tracked.extend(r for r in found if r not in self.tracked)
        return found

    async def overdue(self, limit: int) -> list[Return]:
        now = datetime.now(UTC)
        due = [r for r in self.by_id.values() if r.deadline_at and r.deadline_at <= now]
        self.tracked.extend(due[:limit])
        return due[:limit]


class FakeOrderUnitOfWork(InMemoryUnitOfWork):
    def __init__(self, *orders: Order, return_policy: ReturnPolicy = ReturnPolicy()) -> None:
        super().__init__(OrderEvents())
        self.orders = FakeOrders(list(orders))
        self.returns = FakeReturns()
        self.idempotency = FakeIdempotencyKeys()
        self.deadlines = DEADLINES
        self.idempotency_ttl = timedelta(hours=24)
        self.return_policy = return_policy

    def repositories(self) -> Sequence[TrackingRepository]:
        return [self.orders, self.returns]
