"""The order gateway's HTTP API: parse, call a use case, map errors to problems."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Depends

from oms_order.api.schemas import (
    AddressOut,
    HistoryEntry,
    OrderCreate,
    OrderHistory,
    OrderItemOut,
    OrderPublic,
)
from oms_order.db import views
from oms_order.db.unit_of_work import OrderUnitOfWork
from oms_order.domain.errors import InvalidOrder, OrderNotCancellable
from oms_order.domain.model import Address, Order
from oms_order.handlers import orders as use_cases
from oms_runtime.auth import Authenticated, Principal
from oms_runtime.http import request_unit_of_work
from oms_runtime.logging import bind_log_context
from oms_runtime.problems import Problem

router = APIRouter(tags=["orders"])


UnitOfWorkDep = Annotated[OrderUnitOfWork, Depends(request_unit_of_work)]


def _not_found(order_id: str) -> Problem:
    return Problem(404, "order-not-found", "Order not found", f"No order {order_id}")


def _own(principal: Principal) -> str | None:
    """The customer an API call is limited to (None: an admin sees everything)."""
    return None if principal.is_admin else principal.subject


def order_public(order: Order) -> OrderPublic:
    return OrderPublic(
        id=order.id,
        customer_id=order.customer_id,
        status=order.status.value,
        status_reason=order.status_reason,
        status_detail=order.status_detail,
        items=[
            OrderItemOut(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)
            for line in order.lines
        ],
        total=order.total,
        currency=order.currency,
        shipping_address=AddressOut(**dataclasses.asdict(order.shipping_address)),
        payment_id=order.payment_id,
        shipment_id=order.shipment_id,
        carrier=order.carrier,
        tracking_number=order.tracking_number,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )


@router.post(
    "/orders",
    status_code=202,
    response_model=OrderPublic,
    summary="Place an order and start its saga",
)
async def create_order(
    body: OrderCreate, principal: Authenticated, uow: UnitOfWorkDep
) -> OrderPublic:
    customer_id = principal.subject
    if body.customer_id is not None and body.customer_id != principal.subject:
        if not principal.is_admin:
            raise Problem(
                403,
                "forbidden",
                "Customers place orders only for themselves",
                "Leave out `customer_id` or use your own",
                field="customer_id",
            )
        customer_id = body.customer_id
    command = use_cases.PlaceOrder(
        customer_id=customer_id,
        lines=[(item.sku, item.quantity) for item in body.items],
        shipping_address=Address(**body.shipping_address.model_dump()),
        payment_token=body.payment.token,
    )
    try:
        order = await use_cases.place_order(command, uow)
    except InvalidOrder as exc:
        raise Problem(422, "invalid-order", "The order is not valid", str(exc)) from exc
    bind_log_context(correlation_id=order.id)
    return order_public(order)


async def _load_visible(order_id: str, principal: Principal, uow: OrderUnitOfWork) -> Order:
    async with uow:
        order = await uow.orders.get(order_id)
    customer = _own(principal)
    if order is None or (customer is not None and order.customer_id != customer):
        # Another customer's order is "not found", so ids cannot be probed.
        raise _not_found(order_id)
    return order


@router.get("/orders/{order_id}", response_model=OrderPublic, summary="One order")
async def get_order(order_id: str, principal: Authenticated, uow: UnitOfWorkDep) -> OrderPublic:
    return order_public(await _load_visible(order_id, principal, uow))


@router.get(
    "/orders/{order_id}/history",
    response_model=OrderHistory,
    summary="Every saga step of an order, oldest first",
)
async def get_order_history(
    order_id: str, principal: Authenticated, uow: UnitOfWorkDep
) -> OrderHistory:
    await _load_visible(order_id, principal, uow)
    async with uow:
        rows = await views.history(uow.connection, order_id)
    return OrderHistory(
        order_id=order_id,
        entries=[
            HistoryEntry(
                occurred_at=row["occurred_at"],
                step=row["step"],
                status=row["status"],
                detail=row["detail"],
                message_id=row["message_id"],
            )
            for row in rows
        ],
    )


@router.post(
    "/orders/{order_id}/cancel",
    status_code=202,
    response_model=OrderPublic,
    summary="Cancel an order that has not shipped (compensates earlier steps)",
)
async def cancel_order(order_id: str, principal: Authenticated, uow: UnitOfWorkDep) -> OrderPublic:
    try:
        order = await use_cases.cancel_order(order_id, uow, customer_id=_own(principal))
    except use_cases.OrderNotFound as exc:
        raise _not_found(order_id) from exc
    except OrderNotCancellable as exc:
        raise Problem(
            409, "order-not-cancellable", "The order can no longer be cancelled", str(exc)
        ) from exc
    return order_public(order)
