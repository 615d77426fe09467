"""The warehouse (parcels to dispatch, dispatch notes, returns to receive), stock per
location, the locations, and replenishment."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from oms_console.domain.locations import CODE_PATTERN, LocationFormError, new_location
from oms_console.domain.receiving import (
    CountedLine,
    ReceiveFormError,
    announced_lines,
    describe_item_fields,
    received_items,
)
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

WarehouseStaff = Annotated[Staff, Depends(allowed(Permission.VIEW_WAREHOUSE))]
StockReader = Annotated[Staff, Depends(allowed(Permission.VIEW_STOCK))]
Restocker = Annotated[Staff, Depends(allowed(Permission.RESTOCK))]
ReplenishmentReader = Annotated[Staff, Depends(allowed(Permission.VIEW_REPLENISHMENTS))]
Receiver = Annotated[Staff, Depends(allowed(Permission.VIEW_WAREHOUSE, Permission.RECEIVE_RETURNS))]
LocationAdder = Annotated[Staff, Depends(allowed(Permission.MANAGE_LOCATIONS))]
LocationQuery = Annotated[str, Query(max_length=64)]
MAX_RETURN_LINES = 100


def _location(text: str) -> str:
    """A location filter as given, or none when it cannot be one."""
    return text if CODE_PATTERN.fullmatch(text) else ""


async def _location_codes(upstream: Upstream, staff: Staff) -> list[str]:
    """The locations to offer in filters and forms, preferred first (none when the
    inventory service cannot say: the filters then take what is typed)."""
    found, _ = await optional(upstream.get("inventory", "/locations", staff.name))
    return [str(row["code"]) for row in (found or {}).get("items", [])]


def _link(path: str, **query: str | None) -> str:
    clean = {k: v for k, v in query.items() if v}
    return path + ("?" + urlencode(clean) if clean else "")


@router.get("/warehouse", response_class=HTMLResponse)
async def warehouse(
    request: Request,
    staff: WarehouseStaff,
    upstream: UpstreamDep,
    location: LocationQuery = "",
    cursor: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    location = _location(location)
    error = None
    result: dict[str, Any] = {"items": [], "next_cursor": None}
    try:
        result = await upstream.get(
            "shipping",
            "/shipments",
            staff.name,
            status="created",
            location=location,
            cursor=cursor,
            limit=50,
        )
    except UpstreamError as exc:
        error = exc.message
    return await page(
        request,
        "warehouse.html",
        parcels=result["items"],
        error=error,
        location=location,
        locations=await _location_codes(upstream, staff),
        next_link=(
            _link("/warehouse", location=location, cursor=result["next_cursor"])
            if result.get("next_cursor")
            else None
        ),
    )


@router.get("/warehouse/returns", response_class=HTMLResponse)
async def returns_to_receive(
    request: Request,
    staff: Receiver,
    upstream: UpstreamDep,
    location: LocationQuery = "",
    order_id: Annotated[str, Query(max_length=64)] = "",
    cursor: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    location = _location(location)
    order_id = canonical_uuid(order_id) if is_uuid(order_id) else ""
    error = None
    result: dict[str, Any] | None = {"items": [], "next_cursor": None}
    try:
        # A shipping service without returns answers 404: the page says so.
        result = await upstream.get_or_none(
            "shipping",
            "/returns",
            staff.name,
            status="label_created",
            location=location,
            order_id=order_id,
            cursor=cursor,
            limit=50,
        )
    except UpstreamError as exc:
        error = exc.message
    returns = (result or {}).get("items", [])
    here = _link("/warehouse/returns", location=location, order_id=order_id)
    return await page(
        request,
        "warehouse_returns.html",
        returns=[{**r, "lines": announced_lines(r.get("items") or [])} for r in returns],
        unsupported=result is None,
        error=error,
        location=location,
        order_id=order_id,
        here=here,
        locations=await _location_codes(upstream, staff),
        next_link=(
            _link(
                "/warehouse/returns",
                location=location,
                order_id=order_id,
                cursor=result["next_cursor"],
            )
            if result and result.get("next_cursor")
            else None
        ),
    )


@router.post("/warehouse/returns/{return_id}/receive")
async def receive_return(
    request: Request,
    return_id: str,
    staff: Receiver,
    upstream: UpstreamDep,
) -> Response:
    form = await request.form()
    back = str(form.get("next") or "/warehouse/returns")
    if not is_uuid(return_id):
        return await page(request, "not_found.html", 404, what=f"return {return_id}")
    return_id = canonical_uuid(return_id)
    try:
        count = int(str(form.get("lines") or "0"))
        if not 0 < count <= MAX_RETURN_LINES:
            raise ValueError
        lines = [
            CountedLine(
                sku=str(form.get(f"sku-{i}") or ""),
                announced=int(str(form.get(f"announced-{i}") or "")),
                resellable=str(form.get(f"resellable-{i}") or ""),
                damaged=str(form.get(f"damaged-{i}") or ""),
            )
            for i in range(count)
        ]
    except ValueError:
        return await flash_error(
            request, staff, "The receive form was incomplete. Reload the page.", back
        )
    if not all(SKU_PATTERN.fullmatch(line.sku) for line in lines):
        return await flash_error(
            request, staff, "The receive form was incomplete. Reload the page.", back
        )
    try:
        items = received_items(lines)
    except ReceiveFormError as exc:
        return await flash_error(request, staff, str(exc), back)
    units = {
        condition: sum(i["quantity"] for i in items if i["condition"] == condition)
        for condition in ("resellable", "damaged")
    }
    order_id = str(form.get("order_id") or "")
    return await act(
        request,
        staff,
        action="receive return",
        target=canonical_uuid(order_id) if is_uuid(order_id) else return_id,
        call=lambda: upstream.post(
            "shipping", f"/returns/{return_id}/receive", staff.name, {"items": items}
        ),
        done=(
            f"Return received: {units['resellable']} resellable, {units['damaged']} damaged; "
            "stock and refund follow."
        ),
        back_to=back,
        detail={"return_id": return_id, "items": items},
        explain=lambda exc: describe_item_fields(items, exc.fields) if exc.fields else None,
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
    location: LocationQuery = "",
    cursor: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    location = _location(location)
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
            "inventory",
            f"/products/{quote(sku)}/movements",
            staff.name,
            location=location,
            cursor=cursor,
            limit=100,
        )
    except UpstreamError as exc:
        error = exc.message
    stocked = [str(level["location"]) for level in product.get("locations") or []]
    known = await _location_codes(upstream, staff)
    return await page(
        request,
        "product.html",
        product=product,
        movements=ledger["items"],
        error=error,
        location=location,
        # Where it is stocked first, then every other location it could be stocked at.
        locations=stocked + [code for code in known if code not in stocked],
        next_link=(
            _link(f"/stock/{quote(sku)}", location=location, cursor=ledger["next_cursor"])
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
    location: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    back = f"/stock/{quote(sku)}"
    if not quantity.strip().isdigit() or not 0 < int(quantity) <= 1_000_000:
        return await flash_error(
            request, staff, "Quantity: a whole number from 1 to 1,000,000.", back
        )
    location = location.strip() or "default"
    if not CODE_PATTERN.fullmatch(location):
        return await flash_error(request, staff, "Location: choose one from the list.", back)
    body: dict[str, Any] = {"quantity": int(quantity), "location": location}
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
        done=f"{int(quantity)} units of {sku} added to stock at {location}.",
        back_to=back,
        detail=body,
    )


@router.get("/replenishments", response_class=HTMLResponse)
async def replenishments(
    request: Request,
    staff: ReplenishmentReader,
    upstream: UpstreamDep,
    status: Annotated[str, Query(max_length=10)] = "open",
    location: LocationQuery = "",
    cursor: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    status = status if status in ("open", "fulfilled", "all") else "open"
    location = _location(location)
    error = None
    result: dict[str, Any] = {"items": [], "next_cursor": None}
    try:
        result = await upstream.get(
            "inventory",
            "/replenishments",
            staff.name,
            status=status,
            location=location,
            cursor=cursor,
            limit=50,
        )
    except UpstreamError as exc:
        error = exc.message
    return await page(
        request,
        "replenishments.html",
        requests=result["items"],
        status=status,
        location=location,
        locations=await _location_codes(upstream, staff),
        error=error,
        next_link=(
            _link("/replenishments", status=status, location=location, cursor=result["next_cursor"])
            if result.get("next_cursor")
            else None
        ),
    )


@router.get("/locations", response_class=HTMLResponse)
async def locations(request: Request, staff: StockReader, upstream: UpstreamDep) -> Response:
    found, error = await optional(upstream.get("inventory", "/locations", staff.name))
    return await page(
        request, "locations.html", locations=(found or {}).get("items", []), error=error
    )


@router.post("/locations")
async def add_location(
    request: Request,
    staff: LocationAdder,
    upstream: UpstreamDep,
    code: Annotated[str, Form(max_length=64)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    country: Annotated[str, Form(max_length=10)] = "",
    priority: Annotated[str, Form(max_length=12)] = "",
    serves: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        body = new_location(code, name, country, priority, serves)
    except LocationFormError as exc:
        return await flash_error(request, staff, str(exc), "/locations")
    return await act(
        request,
        staff,
        action="add location",
        target=body["code"],
        call=lambda: upstream.post("inventory", "/locations", staff.name, body),
        done=f"Location {body['code']} added.",
        back_to="/locations",
        detail=body,
    )
