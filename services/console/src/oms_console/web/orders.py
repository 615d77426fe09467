"""Orders: search, the order page and its actions, the attention queue."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from oms_console.domain.actions import order_actions, refundable_amount, return_actions
from oms_console.domain.money import parse_amount
from oms_console.domain.parcels import parcels_of
from oms_console.domain.roles import Permission
from oms_console.upstream import Upstream, UpstreamError
from oms_console.web.common import (
    SKU_PATTERN,
    UpstreamDep,
    act,
    canonical_uuid,
    flash_error,
    is_uuid,
    optional,
)
from oms_console.web.render import page
from oms_console.web.security import Staff, allowed

router = APIRouter(include_in_schema=False)

ORDER_STATUSES = (
    "pending",
    "awaiting_payment",
    "paid",
    "fulfilling",
    "partially_shipped",
    "shipped",
    "completed",
    "rejected",
    "cancelling",
    "cancelled",
    "requires_attention",
)
SEARCH_BY = {"auto": "Anything", "order": "Order id", "customer": "Customer", "sku": "SKU"}

OrdersReader = Annotated[Staff, Depends(allowed(Permission.VIEW_ORDERS))]


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


@router.get("/orders", response_class=HTMLResponse)
async def orders(
    request: Request,
    staff: OrdersReader,
    upstream: UpstreamDep,
    q: Annotated[str, Query(max_length=100)] = "",
    by: Annotated[str, Query(max_length=20)] = "auto",
    status: Annotated[str, Query(max_length=30)] = "",
    created_from: Annotated[str, Query(max_length=10)] = "",
    created_to: Annotated[str, Query(max_length=10)] = "",
    cursor: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    q = q.strip()
    by = by if by in SEARCH_BY else "auto"
    notes: list[str] = []
    if q and (by == "order" or (by == "auto" and is_uuid(q))):
        if not is_uuid(q):
            notes.append(f"{q} is not an order id (they look like 0b7e6f3a-...).")
        else:
            found = await upstream.get_or_none("order", f"/orders/{canonical_uuid(q)}", staff.name)
            if found is not None:
                return RedirectResponse(f"/orders/{found['id']}", status_code=303)
            notes.append(f"No order {q}.")
    filters: dict[str, Any] = {
        "status": status if status in ORDER_STATUSES else None,
        "created_from": _as_start(_day(created_from)),
        "created_to": _as_start(_day(created_to), plus_days=1),
        "cursor": cursor or None,
        "limit": 25,
    }
    matched = ""
    result: dict[str, Any] = {"items": [], "next_cursor": None}
    error = None
    try:
        if not notes:
            if q and by in ("customer", "auto"):
                result = await upstream.get(
                    "order", "/orders", staff.name, customer_id=q, **filters
                )
                matched = f"customer {q}"
            if q and (by == "sku" or (by == "auto" and not result["items"])):
                if SKU_PATTERN.fullmatch(q):
                    result = await upstream.get("order", "/orders", staff.name, sku=q, **filters)
                    matched = f"SKU {q}"
                elif by == "sku":
                    notes.append(f"{q} is not a SKU.")
            if not q:
                result = await upstream.get("order", "/orders", staff.name, **filters)
    except UpstreamError as exc:
        error = exc.message
    query = {
        "q": q,
        "by": by,
        "status": status,
        "created_from": created_from,
        "created_to": created_to,
    }
    next_link = (
        "/orders?" + urlencode({**query, "cursor": result["next_cursor"]})
        if result.get("next_cursor")
        else None
    )
    return await page(
        request,
        "orders.html",
        orders=result["items"],
        next_link=next_link,
        first_link="/orders?" + urlencode(query) if cursor else None,
        query=query,
        matched=matched,
        notes=notes,
        error=error,
        statuses=ORDER_STATUSES,
        search_by=SEARCH_BY,
    )


def _as_start(day: date | None, plus_days: int = 0) -> str | None:
    if day is None:
        return None
    return datetime.combine(day + timedelta(days=plus_days), time.min).isoformat() + "Z"


@router.get("/orders/{order_id}", response_class=HTMLResponse)
async def order_page(
    request: Request, order_id: str, staff: OrdersReader, upstream: UpstreamDep
) -> Response:
    if not is_uuid(order_id):
        return await page(request, "not_found.html", 404, what=f"order {order_id}")
    order_id = canonical_uuid(order_id)
    order = await upstream.get_or_none("order", f"/orders/{order_id}", staff.name)
    if order is None:
        return await page(request, "not_found.html", 404, what=f"order {order_id}")
    (
        (history, history_error),
        (shipments, shipments_error),
        (payments, payments_error),
        (
            returns,
            returns_error,
        ),
    ) = await asyncio.gather(
        optional(upstream.get("order", f"/orders/{order_id}/history", staff.name)),
        optional(upstream.get("shipping", "/shipments", staff.name, order_id=order_id)),
        optional(upstream.get("payment", "/payments", staff.name, order_id=order_id)),
        # The returns API comes later; until the order service has it, no section.
        optional(upstream.get_or_none("order", f"/orders/{order_id}/returns", staff.name)),
    )
    payment_items = (payments or {}).get("items", [])
    refunds = {}
    for payment in payment_items:
        found, _ = await optional(
            upstream.get("payment", f"/payments/{payment['id']}/refunds", staff.name)
        )
        refunds[payment["id"]] = found or []
    shipment_items = (shipments or {}).get("items", [])
    parcels = parcels_of(order, shipment_items)
    return_items = (returns or {}).get("items", []) if returns is not None else None
    role = staff.session.staff.role
    return await page(
        request,
        "order.html",
        order=order,
        history=(history or {}).get("entries", []),
        history_error=history_error,
        parcels=parcels,
        parcel_names={
            p.fulfillment_id: f"parcel {p.number}" + (f" ({p.location})" if p.location else "")
            for p in parcels
            if p.fulfillment_id
        },
        shipments_error=shipments_error,
        payments=payment_items,
        payments_error=payments_error,
        refunds=refunds,
        refundable={p["id"]: refundable_amount(p) for p in payment_items},
        returns=return_items,
        returns_error=returns_error,
        return_actions={r["id"]: return_actions(role, r) for r in return_items or []},
        actions=order_actions(role, order, shipment_items, payment_items),
    )


@router.post("/orders/{order_id}/cancel")
async def cancel(
    request: Request,
    order_id: str,
    staff: Annotated[Staff, Depends(allowed(Permission.CANCEL_ORDER))],
    upstream: UpstreamDep,
) -> Response:
    order_id = canonical_uuid(order_id) if is_uuid(order_id) else order_id
    return await act(
        request,
        staff,
        action="cancel order",
        target=order_id,
        call=lambda: upstream.post("order", f"/orders/{order_id}/cancel", staff.name),
        done="Cancellation started: the compensations run now (parcels that left stay shipped).",
        back_to=f"/orders/{order_id}",
    )


async def _operator_action(
    request: Request, staff: Staff, upstream: Upstream, order_id: str, verb: str, done: str
) -> Response:
    return await act(
        request,
        staff,
        action=f"{verb} order",
        target=order_id,
        call=lambda: upstream.post("order", f"/admin/orders/{order_id}/{verb}", staff.name),
        done=done,
        back_to=f"/orders/{order_id}",
    )


@router.post("/orders/{order_id}/retry")
async def retry(
    request: Request,
    order_id: str,
    staff: Annotated[Staff, Depends(allowed(Permission.RETRY))],
    upstream: UpstreamDep,
) -> Response:
    return await _operator_action(
        request, staff, upstream, order_id, "retry", "The failing steps are tried again."
    )


@router.post("/orders/{order_id}/force")
async def force(
    request: Request,
    order_id: str,
    staff: Annotated[Staff, Depends(allowed(Permission.FORCE))],
    upstream: UpstreamDep,
) -> Response:
    return await _operator_action(
        request, staff, upstream, order_id, "force", "The failing steps are recorded as done."
    )


@router.post("/payments/{payment_id}/refund")
async def refund(
    request: Request,
    payment_id: str,
    staff: Annotated[Staff, Depends(allowed(Permission.REFUND))],
    upstream: UpstreamDep,
    amount: Annotated[str, Form(max_length=30)] = "",
    currency: Annotated[str, Form(max_length=3)] = "EUR",
    reason: Annotated[str, Form(max_length=200)] = "",
    order_id: Annotated[str, Form(max_length=64)] = "",
    idempotency_key: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    back = f"/orders/{order_id}" if is_uuid(order_id) else "/orders"
    try:
        minor = parse_amount(amount, currency)
    except ValueError as exc:
        return await flash_error(request, staff, f"Refund amount: {exc}.", back)
    body = {"amount": minor, "reason": reason.strip() or "requested_by_staff"}
    return await act(
        request,
        staff,
        action="refund payment",
        target=order_id or payment_id,
        call=lambda: upstream.post(
            "payment",
            f"/payments/{payment_id}/refund",
            staff.name,
            json=body,
            headers={"Idempotency-Key": idempotency_key} if idempotency_key else None,
        ),
        done=f"Refund of {amount} {currency} requested.",
        back_to=back,
        detail={"payment_id": payment_id, "amount": minor, "currency": currency},
    )


@router.post("/shipments/{shipment_id}/dispatch")
async def dispatch(
    request: Request,
    shipment_id: str,
    staff: Annotated[Staff, Depends(allowed(Permission.DISPATCH))],
    upstream: UpstreamDep,
    next: Annotated[str, Form(max_length=2000)] = "/warehouse",
    order_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    return await act(
        request,
        staff,
        action="dispatch parcel",
        target=order_id or shipment_id,
        call=lambda: upstream.post("shipping", f"/shipments/{shipment_id}/dispatch", staff.name),
        done="Parcel dispatched: handed to the carrier.",
        back_to=next,
        detail={"shipment_id": shipment_id},
    )


async def _return_action(
    request: Request,
    staff: Staff,
    upstream: Upstream,
    return_id: str,
    order_id: str,
    *,
    verb: str,
    path: str,
    done: str,
    body: dict[str, Any] | None = None,
) -> Response:
    back = f"/orders/{canonical_uuid(order_id)}" if is_uuid(order_id) else "/attention"
    if not is_uuid(return_id):
        return await page(request, "not_found.html", 404, what=f"return {return_id}")
    return_id = canonical_uuid(return_id)
    return await act(
        request,
        staff,
        action=f"{verb} return",
        target=order_id if is_uuid(order_id) else return_id,
        call=lambda: upstream.post("order", path.format(id=return_id), staff.name, json=body),
        done=done,
        back_to=back,
        detail={"return_id": return_id, **(body or {})},
    )


ReturnForm = Annotated[str, Form(max_length=64)]


@router.post("/returns/{return_id}/approve")
async def approve_return(
    request: Request,
    return_id: str,
    staff: Annotated[Staff, Depends(allowed(Permission.REVIEW_RETURNS))],
    upstream: UpstreamDep,
    order_id: ReturnForm = "",
) -> Response:
    return await _return_action(
        request,
        staff,
        upstream,
        return_id,
        order_id,
        verb="approve",
        path="/returns/{id}/approve",
        done="Return approved: shipping sends the customer a return label.",
    )


@router.post("/returns/{return_id}/reject")
async def reject_return(
    request: Request,
    return_id: str,
    staff: Annotated[Staff, Depends(allowed(Permission.REVIEW_RETURNS))],
    upstream: UpstreamDep,
    order_id: ReturnForm = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    if not reason.strip():
        back = f"/orders/{canonical_uuid(order_id)}" if is_uuid(order_id) else "/attention"
        return await flash_error(
            request, staff, "Reason for rejecting: tell the customer why.", back
        )
    return await _return_action(
        request,
        staff,
        upstream,
        return_id,
        order_id,
        verb="reject",
        path="/returns/{id}/reject",
        done="Return rejected.",
        body={"reason": reason.strip()},
    )


@router.post("/returns/{return_id}/retry")
async def retry_return(
    request: Request,
    return_id: str,
    staff: Annotated[Staff, Depends(allowed(Permission.RETRY))],
    upstream: UpstreamDep,
    order_id: ReturnForm = "",
) -> Response:
    return await _return_action(
        request,
        staff,
        upstream,
        return_id,
        order_id,
        verb="retry",
        path="/admin/returns/{id}/retry",
        done="The return's refund is tried again.",
    )


@router.post("/returns/{return_id}/force")
async def force_return(
    request: Request,
    return_id: str,
    staff: Annotated[Staff, Depends(allowed(Permission.FORCE))],
    upstream: UpstreamDep,
    order_id: ReturnForm = "",
) -> Response:
    return await _return_action(
        request,
        staff,
        upstream,
        return_id,
        order_id,
        verb="force",
        path="/admin/returns/{id}/force",
        done="The return's refund is recorded as made by hand.",
    )


@router.get("/attention", response_class=HTMLResponse)
async def attention(
    request: Request,
    staff: Annotated[Staff, Depends(allowed(Permission.VIEW_ATTENTION))],
    upstream: UpstreamDep,
) -> Response:
    (stuck, stuck_error), (overdue, overdue_error), (returns, returns_error) = await asyncio.gather(
        optional(upstream.get("order", "/admin/orders", staff.name, state="requires_attention")),
        optional(upstream.get("order", "/admin/orders", staff.name, state="overdue")),
        optional(upstream.get("order", "/admin/returns", staff.name, state="requires_attention")),
    )
    return await page(
        request,
        "attention.html",
        stuck=(stuck or {}).get("items", []),
        stuck_error=stuck_error,
        overdue=(overdue or {}).get("items", []),
        overdue_error=overdue_error,
        returns=(returns or {}).get("items", []),
        returns_error=returns_error,
    )
