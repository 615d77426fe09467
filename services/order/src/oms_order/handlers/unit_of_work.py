"""What the order service's handlers need of a unit of work, and nothing more: its
repositories, the saga's deadline policy, and `commit`. Postgres provides it in
production (`db/unit_of_work.py`), plain dictionaries in the handler tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from oms_order.domain.deadlines import SagaDeadlines
from oms_order.domain.model import Order
from oms_order.domain.returns import Return, ReturnPolicy
from oms_runtime.messaging.unit_of_work import AbstractUnitOfWork


class Orders(Protocol):
    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None: ...

    def add(self, order: Order) -> None: ...

    async def overdue(self, limit: int) -> list[Order]:
        """Orders past their step's deadline, not taken by another sweeper."""
        ...


class Returns(Protocol):
    async def get(self, return_id: str, *, for_update: bool = False) -> Return | None: ...

    def add(self, created: Return) -> None: ...

    async def of_order(self, order_id: str, *, for_update: bool = False) -> list[Return]:
        """Every return of the order, oldest first."""
        ...

    async def overdue(self, limit: int) -> list[Return]:
        """Returns past their deadline, not taken by another sweeper."""
        ...


class IdempotencyKeys(Protocol):
    async def claim(
        self,
        principal: str,
        scope: str,
        key: str,
        request_hash: str,
        order_id: str,
        ttl: timedelta,
    ) -> bool:
        """True if the key is ours now (no earlier request used it)."""
        ...

    async def find(self, principal: str, scope: str, key: str) -> tuple[str, str] | None:
        """(request hash, order id) of the request that claimed the key."""
        ...

    async def remember_answer(
        self, principal: str, scope: str, key: str, response: dict[str, Any]
    ) -> None:
        """Keep the answer given under the key, for replays of the request."""
        ...

    async def first_answer(self, principal: str, scope: str, key: str) -> dict[str, Any] | None: ...

    async def purge(self, ttl: timedelta) -> int: ...


class OrderUnitOfWork(AbstractUnitOfWork, Protocol):
    """One transaction. On `commit` the orders it loaded or added are written back
    with the messages and history their events cause; leaving without committing
    discards everything."""

    @property
    def orders(self) -> Orders: ...

    @property
    def returns(self) -> Returns: ...

    @property
    def idempotency(self) -> IdempotencyKeys: ...

    @property
    def return_policy(self) -> ReturnPolicy: ...

    @property
    def deadlines(self) -> SagaDeadlines: ...

    @property
    def idempotency_ttl(self) -> timedelta: ...
