"""Use cases of returns: a customer asks, staff decide, the warehouse and payment
answer (their replies are handled in `saga.py` like the order's)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from oms_order.domain.errors import OrderError
from oms_order.domain.returns import OrderNotShipped, Return
from oms_order.handlers.orders import (
    Answered,
    IdempotencyKeyReused,
    IdempotentRequest,
    claimed_before,
    visible_order,
)
from oms_order.handlers.unit_of_work import OrderUnitOfWork


class ReturnNotFound(OrderError):
    code = "return_not_found"

    def __init__(self, return_id: str) -> None:
        super().__init__(f"No return {return_id}")


def _now() -> datetime:
    return datetime.now(UTC)


async def request_return(
    order_id: str,
    items: dict[str, int],
    reason: str,
    uow: OrderUnitOfWork,
    *,
    customer_id: str | None,
    idempotency: IdempotentRequest | None = None,
    render: Callable[[Return], dict[str, Any]] | None = None,
) -> Answered[Return]:
    """A return of `items` of the order. The order's row lock keeps two requests of
    the same order from both claiming the same units. With an idempotency key, a
    request asked before gets its first answer again."""
    async with uow:
        order = await visible_order(uow, order_id, customer_id, for_update=True)
        if idempotency is not None:
            first = await _replayed(uow, idempotency, order.id)
            if first is not None:
                return first
        others = await uow.returns.of_order(order.id)
        policy = uow.return_policy
        now = _now()
        shipped = order.shipped_units()
        if not shipped:
            raise OrderNotShipped(
                f"an order that is {order.status} takes no returns; "
                "returns are for partially shipped, shipped or completed orders"
            )
        created = Return.request(
            return_id=str(uuid.uuid4()),
            order_id=order.id,
            customer_id=order.customer_id,
            currency=order.currency or "",
            items=items,
            reason=reason,
            shipped=shipped,
            other_returns=others,
            now=now,
            window=policy.window,
            pickup_address=order.shipping_address,
        )
        if policy.auto_approve:
            created.approve("automatic", now, policy.receive_within)
        uow.returns.add(created)
        answer = None
        if idempotency is not None and render is not None:
            answer = render(created)
            await uow.idempotency.remember_answer(
                idempotency.principal, idempotency.scope, idempotency.key, answer
            )
        await uow.commit()
    return Answered(created, answer)


async def _replayed(
    uow: OrderUnitOfWork, request: IdempotentRequest, order_id: str
) -> Answered[Return] | None:
    """The first answer under the key, if this request was made before."""
    if await claimed_before(uow, request, order_id) is None:
        return None
    first = await uow.idempotency.first_answer(request.principal, request.scope, request.key)
    returned = await uow.returns.get(str(first["id"])) if first is not None else None
    if first is None or returned is None:
        raise IdempotencyKeyReused()
    return Answered(returned, first, replayed=True)


async def returns_of_order(
    order_id: str, uow: OrderUnitOfWork, *, customer_id: str | None
) -> list[Return]:
    async with uow:
        order = await visible_order(uow, order_id, customer_id, for_update=False)
        return await uow.returns.of_order(order.id)


async def get_return(return_id: str, uow: OrderUnitOfWork, *, customer_id: str | None) -> Return:
    async with uow:
        return await _visible(uow, return_id, customer_id, for_update=False)


async def approve_return(return_id: str, operator: str, uow: OrderUnitOfWork) -> Return:
    async with uow:
        found = await _visible(uow, return_id, None, for_update=True)
        found.approve(operator, _now(), uow.return_policy.receive_within)
        await uow.commit()
    return found


async def reject_return(return_id: str, reason: str, operator: str, uow: OrderUnitOfWork) -> Return:
    async with uow:
        found = await _visible(uow, return_id, None, for_update=True)
        found.reject(reason, operator, _now())
        await uow.commit()
    return found


async def cancel_return(return_id: str, uow: OrderUnitOfWork, *, customer_id: str | None) -> Return:
    async with uow:
        found = await _visible(uow, return_id, customer_id, for_update=True)
        found.cancel(_now())
        await uow.commit()
    return found


async def retry_return(return_id: str, operator: str, uow: OrderUnitOfWork) -> Return:
    async with uow:
        found = await _visible(uow, return_id, None, for_update=True)
        found.retry(operator, _now(), uow.return_policy.refund_retry)
        await uow.commit()
    return found


async def force_return(return_id: str, operator: str, uow: OrderUnitOfWork) -> Return:
    async with uow:
        found = await _visible(uow, return_id, None, for_update=True)
        found.force(operator, _now())
        await uow.commit()
    return found


async def sweep_overdue_returns(uow: OrderUnitOfWork, batch_size: int = 50) -> int:
    """Approved returns whose parcel never came, refunds never answered."""
    async with uow:
        overdue = await uow.returns.overdue(batch_size)
        policy = uow.return_policy
        for found in overdue:
            found.deadline_passed(_now(), policy.refund_retry, policy.max_attempts)
        await uow.commit()
    return len(overdue)


async def _visible(
    uow: OrderUnitOfWork, return_id: str, customer_id: str | None, *, for_update: bool
) -> Return:
    found = await uow.returns.get(return_id, for_update=for_update)
    if found is None or (customer_id is not None and found.customer_id != customer_id):
        raise ReturnNotFound(return_id)
    return found
