"""Use cases behind the order API."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from oms_order.db.unit_of_work import OrderUnitOfWork
from oms_order.domain.model import Address, Order, OrderLine
from oms_order.handlers.outgoing import commit_order


@dataclass(frozen=True)
class PlaceOrder:
    customer_id: str
    lines: list[tuple[str, int]]
    shipping_address: Address
    payment_token: str


class OrderNotFound(Exception):
    pass


OperatorAction = Callable[[str, str, OrderUnitOfWork], Awaitable[Order]]


async def place_order(command: PlaceOrder, uow: OrderUnitOfWork) -> Order:
    order = Order.place(
        order_id=str(uuid.uuid4()),
        customer_id=command.customer_id,
        lines=[OrderLine(sku, quantity) for sku, quantity in command.lines],
        shipping_address=command.shipping_address,
        payment_token=command.payment_token,
        now=datetime.now(UTC),
    )
    async with uow:
        uow.correlation_id = order.id
        await commit_order(uow, order, new=True)
    return order


async def cancel_order(order_id: str, uow: OrderUnitOfWork, *, customer_id: str | None) -> Order:
    """Cancel with compensation. `customer_id` restricts to that customer's orders."""
    async with uow:
        order = await uow.orders.get(order_id, for_update=True)
        if order is None or (customer_id is not None and order.customer_id != customer_id):
            raise OrderNotFound(order_id)
        order.cancel()
        await commit_order(uow, order)
    return order


async def retry_order(order_id: str, operator: str, uow: OrderUnitOfWork) -> Order:
    async with uow:
        order = await uow.orders.get(order_id, for_update=True)
        if order is None:
            raise OrderNotFound(order_id)
        order.retry(operator)
        await commit_order(uow, order)
    return order


async def force_compensation(order_id: str, operator: str, uow: OrderUnitOfWork) -> Order:
    async with uow:
        order = await uow.orders.get(order_id, for_update=True)
        if order is None:
            raise OrderNotFound(order_id)
        order.force_compensation(operator)
        await commit_order(uow, order)
    return order
