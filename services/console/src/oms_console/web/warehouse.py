"""The warehouse (parcels to dispatch, dispatch notes), stock and replenishment."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from oms_console.domain.roles import Permission
from oms_console.upstream import UpstreamError
from oms_console.web.common import SKU_PATTERN, UpstreamDep, act, flash_error, is_uuid
from oms_console.web.render import page
from oms_console.web.security import Staff, allowed

router = APIRouter(include_in_schema=False)

WarehouseStaff = Annotated[Staff, Depends(allowed(Permission.VIEW_WAREHOUSE))]
StockReader = Annotated[Staff, Depends(allowed(Permission.VIEW_STOCK))]
Restocker = Annotated[Staff, Depends(allowed(Permission.RESTOCK))]
ReplenishmentReader = Annotated[Staff, Depends(allowed(Permission.VIEW_REPLENISHMENTS))]


@router.get("/warehouse", response_class=HTMLResponse)
async def warehouse(
    request: Request,
    staff: WarehouseStaff,
    upstream: UpstreamDep,
    cursor: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    error = None
    result: dict[str, Any] = {"items": [], "next_cursor": None}
    try:
        result = await upstream.get(
            "shipping", "/shipments", staff.name, status="created", cursor=cursor, limit=50
        )
    except UpstreamError as exc:
        error = exc.message
    return await page(
        request,
        "warehouse.html",
        parcels=result["items"],
        error=error,
        next_link=(
            "/warehouse?" + urlencode({"cursor": result["next_cursor"]})
            if result.get("next_cursor")
            else None
        ),
    )


@router.get("/warehouse/notes/{shipment_id}", response_class=HTMLResponse)
async def dispatch_note(
    request: Request, shipment_id: str, staff: WarehouseStaff, upstream: UpstreamDep
) -> Response:
    note = (
        await upstream.get_or_none("shipping", f"/shipments/{shipment_id}", staff.name)
        if is_uuid(shipment_id)
        else None
    )
    if note is None:
        return await page(request, "not_found.html", 404, what=f"parcel {shipment_id}")
    return await page(request, "dispatch_note.html", note=note)


@router.get("/stock", response_class=HTMLResponse)
async def stock(
    request: Request,
    staff: StockReader,
    upstream: UpstreamDep,
    low: Annotated[str, Query(max_length=5)] = "",
    cursor: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    error = None
    result: dict[str, Any] = {"items": [], "next_cursor": None}
    try:
        result = await upstream.get(
            "inventory",
            "/products",
            staff.name,
            low_stock="true" if low else None,
            cursor=cursor,
            limit=50,
        )
    except UpstreamError as exc:
        error = exc.message
    query = {"low": low} if low else {}
    return await page(
        request,
        "stock.html",
        products=result["items"],
        error=error,
        low=bool(low),
        next_link=(
            "/stock?" + urlencode({**query, "cursor": result["next_cursor"]})
            if result.get("next_cursor")
            else None
        ),
    )


@router.get("/stock/{sku}", response_class=HTMLResponse)
async def product_page(
    request: Request,
    sku: str,
    staff: StockReader,
    upstream: UpstreamDep,
    cursor: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    product = (
        await upstream.get_or_none("inventory", f"/products/{quote(sku)}", staff.name)
        if SKU_PATTERN.fullmatch(sku)
        else None
    )
    if product is None:
        return await page(request, "not_found.html", 404, what=f"product {sku}")
    error = None
    ledger: dict[str, Any] = {"items": [], "next_cursor": None}
    try:
        ledger = await upstream.get(
            "inventory", f"/products/{quote(sku)}/movements", staff.name, cursor=cursor, limit=100
        )
    except UpstreamError as exc:
        error = exc.message
    return await page(
        request,
        "product.html",
        product=product,
        movements=ledger["items"],
        error=error,
        next_link=(
            f"/stock/{quote(sku)}?" + urlencode({"cursor": ledger["next_cursor"]})
            if ledger.get("next_cursor")
            else None
        ),
    )


@router.post("/stock/{sku}/restock")
async def restock(
    request: Request,
    sku: str,
    staff: Restocker,
    upstream: UpstreamDep,
    quantity: Annotated[str, Form(max_length=12)] = "",
    reference: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    back = f"/stock/{quote(sku)}"
    if not quantity.strip().isdigit() or not 0 < int(quantity) <= 1_000_000:
        return await flash_error(
            request, staff, "Quantity: a whole number from 1 to 1,000,000.", back
        )
    body: dict[str, Any] = {"quantity": int(quantity)}
    if reference.strip():
        body["reference"] = reference.strip()
    return await act(
        request,
        staff,
        action="restock",
        target=sku,
        call=lambda: upstream.post(
            "inventory", f"/products/{quote(sku)}/restock", staff.name, body
        ),
        done=f"{int(quantity)} units of {sku} added to stock.",
        back_to=back,
        detail=body,
    )


@router.get("/replenishments", response_class=HTMLResponse)
async def replenishments(
    request: Request,
    staff: ReplenishmentReader,
    upstream: UpstreamDep,
    status: Annotated[str, Query(max_length=10)] = "open",
    cursor: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    status = status if status in ("open", "fulfilled", "all") else "open"
    error = None
    result: dict[str, Any] = {"items": [], "next_cursor": None}
    try:
        result = await upstream.get(
            "inventory", "/replenishments", staff.name, status=status, cursor=cursor, limit=50
        )
    except UpstreamError as exc:
        error = exc.message
    return await page(
        request,
        "replenishments.html",
        requests=result["items"],
        status=status,
        error=error,
        next_link=(
            "/replenishments?" + urlencode({"status": status, "cursor": result["next_cursor"]})
            if result.get("next_cursor")
            else None
        ),
    )
