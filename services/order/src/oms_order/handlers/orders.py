"""Use cases behind the order API."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from oms_order.domain.errors import OrderError
from oms_order.domain.model import Order
from oms_order.domain.values import Address, OrderLine
from oms_order.handlers.unit_of_work import OrderUnitOfWork

R = TypeVar("R")


@dataclass(frozen=True)
class PlaceOrder:
    customer_id: str
    lines: list[tuple[str, int]]
    shipping_address: Address
    payment_token: str


@dataclass(frozen=True)
class IdempotentRequest:
    """A client's `Idempotency-Key`, scoped to who sent it and what it was for."""

    principal: str
    scope: str
    key: str
    request_hash: str


class OrderNotFound(OrderError):
    """No such order, or not the caller's (ids cannot be probed)."""

    code = "order_not_found"

    def __init__(self, order_id: str) -> None:
        super().__init__(f"No order {order_id}")


class IdempotencyKeyReused(OrderError):
    """The same key came with a different request."""

    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was used with a different request")


OperatorAction = Callable[[str, str, OrderUnitOfWork], Awaitable[Order]]


async def place_order(
    command: PlaceOrder, uow: OrderUnitOfWork, idempotency: IdempotentRequest | None = None
) -> tuple[Order, bool]:
    """Store the order and start its saga. Returns the order and whether it is the
    answer to an earlier request with the same idempotency key (no new saga)."""
    order = Order.place(
        order_id=str(uuid.uuid4()),
        customer_id=command.customer_id,
        lines=[OrderLine(sku, quantity) for sku, quantity in command.lines],
        shipping_address=command.shipping_address,
        payment_token=command.payment_token,
        now=datetime.now(UTC),
    )
    async with uow:
        if idempotency is not None:
            earlier = await _claim(uow, idempotency, order.id)
            if earlier is not None:
                return earlier, True
        uow.orders.add(order)
        await uow.commit()
    return order, False


@dataclass(frozen=True)
class Answered(Generic[R]):
    """What a request answered: the resource, and with an idempotency key the answer
    kept with the key (`rendered` by the caller); `replayed` when the key was used
    before, so the answer is the first request's."""

    resource: R
    answer: dict[str, Any] | None = None
    replayed: bool = False


async def cancel_order(
    order_id: str,
    uow: OrderUnitOfWork,
    *,
    customer_id: str | None,
    idempotency: IdempotentRequest | None = None,
    render: Callable[[Order], dict[str, Any]] | None = None,
) -> Answered[Order]:
    """Cancel with compensation. `customer_id` restricts to that customer's orders.
    With an idempotency key, the answer (`render`ed) is kept with the key, and a
    request asked before gets that first answer again."""
    async with uow:
        order = await visible_order(uow, order_id, customer_id, for_update=True)
        if idempotency is not None and await _claim(uow, idempotency, order.id) is not None:
            # Asked before: cancelling is already under way or done.
            first = await uow.idempotency.first_answer(
                idempotency.principal, idempotency.scope, idempotency.key
            )
            return Answered(order, first or (render(order) if render else None), replayed=True)
        order.cancel()
        answer = None
        if idempotency is not None and render is not None:
            answer = render(order)
            await uow.idempotency.remember_answer(
                idempotency.principal, idempotency.scope, idempotency.key, answer
            )
        await uow.commit()
    return Answered(order, answer)
    return order


async def delete_order(order_id: str, uow: OrderUnitOfWork, *, customer_id: str | None) -> None:
    async with uow:
        order = await visible_order(uow, order_id, customer_id, for_update=True)
        order.delete()
        for sent_back in await uow.returns.of_order(order.id, for_update=True):
            sent_back.erase_personal_data()
        await uow.commit()


async def retry_order(order_id: str, operator: str, uow: OrderUnitOfWork) -> Order:
    async with uow:
        order = await visible_order(uow, order_id, None, for_update=True)
        order.retry(operator)
        await uow.commit()
    return order


async def force_compensation(order_id: str, operator: str, uow: OrderUnitOfWork) -> Order:
    async with uow:
        order = await visible_order(uow, order_id, None, for_update=True)
        order.force_compensation(operator)
        await uow.commit()
    return order


async def visible_order(
    uow: OrderUnitOfWork, order_id: str, customer_id: str | None, *, for_update: bool
) -> Order:
    order = await uow.orders.get(order_id, for_update=for_update)
    if (
        order is None
        or order.deleted
        or (customer_id is not None and order.customer_id != customer_id)
    ):
        raise OrderNotFound(order_id)
    return order


async def claimed_before(
    uow: OrderUnitOfWork, request: IdempotentRequest, order_id: str
) -> str | None:
    """Claim the key for a request about `order_id`; if the same request claimed it
    before, the order it named (another request under the key is refused)."""
    if await uow.idempotency.claim(
        request.principal,
        request.scope,
        request.key,
        request.request_hash,
        order_id,
        uow.idempotency_ttl,
    ):
        return None
    found = await uow.idempotency.find(request.principal, request.scope, request.key)
    if found is None or found[0] != request.request_hash:
        raise IdempotencyKeyReused()
    return found[1]


async def _claim(uow: OrderUnitOfWork, request: IdempotentRequest, order_id: str) -> Order | None:
    """Claim the key for `order_id`; if it was claimed before, the order it names."""
    earlier_id = await claimed_before(uow, request, order_id)
    if earlier_id is None:
        return None
    earlier = await uow.orders.get(earlier_id)
    if earlier is None:
        raise IdempotencyKeyReused()
    return earlier


async def modify_order(
    order_id: str,
    uow: OrderUnitOfWork,
    *,
    customer_id: str | None,
    address: Address | None,
    lines: list[tuple[str, int]] | None,
) -> Order:
    """Change the shipping address and/or the items, atomically: if either change is
    refused, neither happens."""
    async with uow:
        order = await visible_order(uow, order_id, customer_id, for_update=True)
        if address is not None:
            order.change_address(address)
        if lines is not None:
            order.amend_items([OrderLine(sku, quantity) for sku, quantity in lines])
        await uow.commit()
    return order
