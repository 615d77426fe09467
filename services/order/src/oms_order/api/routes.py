"""The order gateway's HTTP API: parse, call a use case, present the result. What
a use case refuses answers by the service's one table (`api/problems.py`)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from oms_order.api.dependencies import UnitOfWorkDep, idempotent_request, own_orders_only
from oms_order.api.presenters import order_public
from oms_order.api.schemas import (
    HistoryEntry,
    OrderCreate,
    OrderHistory,
    OrderPage,
    OrderPublic,
    OrderUpdate,
    SkuField,
)
from oms_order.db import views
from oms_order.db.unit_of_work import SqlOrderUnitOfWork
from oms_order.domain.model import Order, OrderStatus
from oms_order.domain.values import Address
from oms_order.handlers import orders as use_cases
from oms_order.workers.status_watcher import OrderStatusWatcher
from oms_runtime.auth import Authenticated, Principal
from oms_runtime.http import location_documented
from oms_runtime.logging import bind_log_context
from oms_runtime.problems import Problem
from oms_runtime.ratelimit import rate_limited
from oms_runtime.validation import IdempotencyKey, IsoDateTime, idempotency_key_header

router = APIRouter(tags=["orders"])

IdempotencyKeyHeader = Annotated[
    IdempotencyKey,
    idempotency_key_header(
        "Retrying with the same key and body answers with the same order and "
        "starts nothing new; the same key with another body is a 409"
    ),
]

_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+)", re.IGNORECASE)


def _wait_seconds(prefer: str | None, ceiling: float) -> float:
    """`Prefer: wait=N` (RFC 7240), capped."""
    match = _PREFER_WAIT.search(prefer or "")
    return min(float(match.group(1)), ceiling) if match else 0.0


async def _wait_until_not_pending(
    request: Request, uow_factory: Any, order: Order, seconds: float
) -> Order:
    watcher: OrderStatusWatcher = request.app.state.status_watcher
    async with watcher.watching(order.id) as changed:
        async with uow_factory() as uow:
            current = await uow.orders.get(order.id)
        if current is not None and current.status is OrderStatus.PENDING:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed, seconds)
            async with uow_factory() as uow:
                current = await uow.orders.get(order.id)
    return current or order


@router.post(
    "/orders",
    dependencies=[Depends(rate_limited)],
    status_code=202,
    response_model=OrderPublic,
    summary="Place an order and start its saga",
    responses={
        202: location_documented(
            "The order: `/orders/{id}`",
            {
                "order": "GET /orders/{order_id}",
                "history": "GET /orders/{order_id}/history",
                "change": "PATCH /orders/{order_id}",
                "cancel": "POST /orders/{order_id}/cancel",
                "delete": "DELETE /orders/{order_id}",
                "return": "POST /orders/{order_id}/returns",
                "returns": "GET /orders/{order_id}/returns",
                "retry": "POST /admin/orders/{order_id}/retry",
                "force": "POST /admin/orders/{order_id}/force",
            },
            parameter="order_id",
        ),
        409: {"description": "Idempotency-Key reused with another body"},
    },
)
async def create_order(
    body: OrderCreate,
    principal: Authenticated,
    uow: UnitOfWorkDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
    prefer: Annotated[
        str | None,
        Header(description="`wait=N`: answer once the order left `pending`, or after N s"),
    ] = None,
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
    order, replayed = await use_cases.place_order(
        command,
        uow,
        idempotent_request(
            idempotency_key, principal, "POST /orders", body.model_dump(mode="json")
        ),
    )
    bind_log_context(correlation_id=order.id)
    response.headers["Location"] = f"/orders/{order.id}"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    wait = _wait_seconds(prefer, request.app.state.settings.max_wait_seconds)
    if wait > 0:
        order = await _wait_until_not_pending(request, request.app.state.unit_of_work, order, wait)
        response.headers["Preference-Applied"] = f"wait={int(wait)}"
    return order_public(order)


def _encode_cursor(order: Order) -> str:
    raw = f"{order.created_at.isoformat()}|{order.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, order_id = raw.split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(order_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Problem(
            422,
            "validation-error",
            "Invalid cursor",
            "Use the next_cursor of a previous page",
            field="cursor",
        ) from exc


@router.get("/orders", response_model=OrderPage, summary="Orders, newest first, filtered")
async def list_orders(
    principal: Authenticated,
    uow: UnitOfWorkDep,
    status: Annotated[list[OrderStatus] | None, Query(description="One or more statuses")] = None,
    customer_id: Annotated[
        str | None, Query(max_length=100, description="Admins only; customers see their own")
    ] = None,
    created_from: Annotated[IsoDateTime | None, Query(description="Inclusive")] = None,
    created_to: Annotated[IsoDateTime | None, Query(description="Exclusive")] = None,
    sku: Annotated[SkuField | None, Query(description="Orders with a line of this SKU")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> OrderPage:
    own = own_orders_only(principal)
    if own is not None and customer_id not in (None, own):
        raise Problem(403, "forbidden", "Customers see only their own orders", field="customer_id")
    async with uow:
        found = await uow.orders.search(
            customer_id=own or customer_id,
            statuses=[s.value for s in status or []],
            created_from=created_from,
            created_to=created_to,
            sku=sku,
            after=_decode_cursor(cursor) if cursor else None,
            limit=limit + 1,
        )
    page = found[:limit]
    return OrderPage(
        items=[order_public(order) for order in page],
        next_cursor=_encode_cursor(page[-1]) if len(found) > limit else None,
    )


async def _load_visible(order_id: str, principal: Principal, uow: SqlOrderUnitOfWork) -> Order:
    async with uow:
        order = await uow.orders.get(order_id)
    customer = own_orders_only(principal)
    if order is None or order.deleted or (customer is not None and order.customer_id != customer):
        # Another customer's order is "not found", so ids cannot be probed.
        raise use_cases.OrderNotFound(order_id)
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


@router.patch(
    "/orders/{order_id}",
    dependencies=[Depends(rate_limited)],
    response_model=OrderPublic,
    status_code=202,
    summary="Change the shipping address (until shipped) or the items (see the docs)",
)
async def update_order(
    order_id: str, body: OrderUpdate, principal: Authenticated, uow: UnitOfWorkDep
) -> OrderPublic:
    order = await use_cases.modify_order(
        order_id,
        uow,
        customer_id=own_orders_only(principal),
        address=(Address(**body.shipping_address.model_dump()) if body.shipping_address else None),
        lines=[(item.sku, item.quantity) for item in body.items] if body.items else None,
    )
    return order_public(order)


@router.post(
    "/orders/{order_id}/cancel",
    dependencies=[Depends(rate_limited)],
    status_code=202,
    response_model=OrderPublic,
    summary="Cancel an order that has not shipped (compensates earlier steps)",
)
async def cancel_order(
    order_id: str,
    principal: Authenticated,
    uow: UnitOfWorkDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> OrderPublic:
    answered = await use_cases.cancel_order(
        order_id,
        uow,
        customer_id=own_orders_only(principal),
        idempotency=idempotent_request(
            idempotency_key, principal, "POST /orders/cancel", {"order_id": order_id}
        ),
        render=lambda order: order_public(order).model_dump(mode="json"),
    )
    if answered.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if answered.answer is not None:
        # The same bytes for the first request and every replay of it.
        return OrderPublic.model_validate(answered.answer)
    return order_public(answered.resource)


@router.delete(
    "/orders/{order_id}",
    dependencies=[Depends(rate_limited)],
    status_code=204,
    summary="Delete a finished order: personal data erased, subscribers told (order.deleted)",
)
async def delete_order(order_id: str, principal: Authenticated, uow: UnitOfWorkDep) -> Response:
    await use_cases.delete_order(order_id, uow, customer_id=own_orders_only(principal))
    return Response(status_code=204)
