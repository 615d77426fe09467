"""Inventory admin API: locations, products, stock per location, restocking. What a
use case refuses answers by the service's one table (`api/problems.py`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.exceptions import RequestValidationError

from oms_inventory.api.schemas import (
    LocationCode,
    LocationCreate,
    LocationList,
    LocationPublic,
    MovementPage,
    MovementPublic,
    ProductCreate,
    ProductPage,
    ProductPublic,
    ProductUpdate,
    ReplenishmentPage,
    ReplenishmentPublic,
    Restock,
    StockAtLocation,
)
from oms_inventory.db import views
from oms_inventory.db.repository import location_of
from oms_inventory.db.unit_of_work import SqlInventoryUnitOfWork
from oms_inventory.domain.allocation import Location
from oms_inventory.domain.model import DEFAULT_LOCATION, Product
from oms_inventory.handlers import products as use_cases
from oms_inventory.handlers.stock import ProductNotFound, UnknownLocation, receive_stock
from oms_runtime.auth import Admin
from oms_runtime.http import location_documented, request_unit_of_work
from oms_runtime.validation import CursorId, IdempotencyKey, idempotency_key_header

router = APIRouter(tags=["products"])


UnitOfWorkDep = Annotated[SqlInventoryUnitOfWork, Depends(request_unit_of_work)]


def product_public(product: Product | dict[str, Any]) -> ProductPublic:
    """From an aggregate, or a row of the product views (`levels` as JSON)."""
    fields: dict[str, Any]
    levels: list[dict[str, Any]]
    if isinstance(product, Product):
        fields = {name: getattr(product, name) for name in _PRODUCT_FIELDS}
        levels = [
            {
                "location": code,
                "on_hand": level.on_hand,
                "reserved": level.reserved,
                "damaged": level.damaged,
            }
            for code, level in sorted(
                product.levels.items(), key=lambda item: (item[1].location.priority, item[0])
            )
        ]
    else:
        fields, levels = product, product["levels"]
    threshold = fields["low_stock_threshold"]
    at_locations = [
        StockAtLocation(
            location=level["location"],
            on_hand=level["on_hand"],
            reserved=level["reserved"],
            available=level["on_hand"] - level["reserved"],
            low_stock=level["on_hand"] - level["reserved"] <= threshold,
            damaged=level["damaged"],
        )
        for level in levels
    ]
    on_hand = sum(level.on_hand for level in at_locations)
    reserved = sum(level.reserved for level in at_locations)
    return ProductPublic(
        **{name: fields[name] for name in _PRODUCT_FIELDS},
        on_hand=on_hand,
        reserved=reserved,
        available=on_hand - reserved,
        damaged=sum(level.damaged for level in at_locations),
        low_stock=any(level.low_stock for level in at_locations) or not at_locations,
        locations=at_locations,
    )


_PRODUCT_FIELDS = (
    "sku",
    "name",
    "unit_price",
    "currency",
    "low_stock_threshold",
    "reorder_quantity",
)


def location_public(location: Location, name: str) -> LocationPublic:
    return LocationPublic(
        code=location.code,
        name=name,
        country=location.country,
        priority=location.priority,
        serves=sorted(location.serves) if location.serves is not None else None,
    )


def _invalid(field: tuple[str | int, ...], message: str) -> RequestValidationError:
    """A 422 naming the field, like any validation error (for rules the schema
    cannot say: one of two fields, a location that must exist)."""
    return RequestValidationError(
        [{"loc": ("body", *field), "msg": message, "type": "value_error"}]
    )


@router.post(
    "/locations",
    status_code=201,
    response_model=LocationPublic,
    tags=["locations"],
    summary="Add a stock location (warehouse, store)",
)
async def create_location(body: LocationCreate, _: Admin, uow: UnitOfWorkDep) -> LocationPublic:
    location = Location(
        code=body.code,
        country=body.country,
        priority=body.priority,
        serves=frozenset(body.serves) if body.serves is not None else None,
    )
    await use_cases.create_location(location, body.name, uow)
    return location_public(location, body.name)


@router.get(
    "/locations",
    response_model=LocationList,
    tags=["locations"],
    summary="Every stock location, preferred first",
)
async def list_locations(_: Admin, uow: UnitOfWorkDep) -> LocationList:
    async with uow:
        rows = await views.all_locations(uow.connection)
    return LocationList(items=[location_public(location_of(row), row["name"]) for row in rows])


@router.post(
    "/products",
    status_code=201,
    response_model=ProductPublic,
    summary="Add a product with its initial stock (at `default`, or per location)",
    responses={
        201: location_documented(
            "The product: `/products/{sku}`",
            {
                "product": "GET /products/{sku}",
                "change": "PATCH /products/{sku}",
                "restock": "POST /products/{sku}/restock",
                "movements": "GET /products/{sku}/movements",
            },
            parameter="sku",
            field="sku",
        )
    },
)
async def create_product(
    body: ProductCreate, _: Admin, uow: UnitOfWorkDep, response: Response
) -> ProductPublic:
    if body.stock is not None and body.on_hand is not None:
        raise _invalid(("stock",), "give on_hand (stock at `default`) or stock, not both")
    if body.stock is None and body.on_hand is None:
        raise _invalid(("on_hand",), "on_hand (stock at `default`) or stock is required")
    stock: dict[str, int] = {}
    for index, line in enumerate(body.stock or ()):
        if line.location in stock:
            raise _invalid(("stock", index, "location"), "listed twice")
        stock[line.location] = line.on_hand
    new = use_cases.NewProduct(
        sku=body.sku,
        name=body.name,
        unit_price=body.unit_price,
        currency=body.currency,
        stock=stock if body.stock is not None else {DEFAULT_LOCATION: body.on_hand or 0},
        low_stock_threshold=body.low_stock_threshold,
        reorder_quantity=body.reorder_quantity,
    )
    try:
        product = await use_cases.create_product(new, uow)
    except UnknownLocation as unknown:
        if body.stock is None:
            raise
        # Named as the input that holds it, like a validation error.
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "stock", index, "location"),
                    "msg": f"no location {line.location}",
                    "type": "unknown_location",
                }
                for index, line in enumerate(body.stock)
                if line.location in unknown.codes
            ]
        ) from unknown
    response.headers["Location"] = f"/products/{product.sku}"
    return product_public(product)


@router.get("/products", response_model=ProductPage, summary="Products by SKU, paginated")
async def list_products(
    _: Admin,
    uow: UnitOfWorkDep,
    low_stock: Annotated[
        bool | None, Query(description="only (or no) products low at some location")
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=64, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ProductPage:
    async with uow:
        page, next_cursor = await views.product_page(
            uow.connection, low_stock=low_stock, after=cursor, limit=limit
        )
    return ProductPage(items=[product_public(row) for row in page], next_cursor=next_cursor)


@router.get(
    "/products/{sku}",
    response_model=ProductPublic,
    summary="One product: totals and stock per location",
)
async def get_product(sku: str, _: Admin, uow: UnitOfWorkDep) -> ProductPublic:
    async with uow:
        product = await views.product(uow.connection, sku)
    if product is None:
        raise ProductNotFound(sku)
    return product_public(product)


@router.get(
    "/products/{sku}/movements",
    response_model=MovementPage,
    summary="The product's stock ledger, oldest first",
)
async def list_movements(
    sku: str,
    _: Admin,
    uow: UnitOfWorkDep,
    location: Annotated[LocationCode | None, Query(description="only at this location")] = None,
    cursor: Annotated[CursorId | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> MovementPage:
    async with uow:
        if await uow.products.get(sku) is None:
            raise ProductNotFound(sku)
        page, next_cursor = await views.movements_page(
            uow.connection, sku=sku, location=location, after=cursor, limit=limit
        )
    return MovementPage(items=[MovementPublic(**row) for row in page], next_cursor=next_cursor)


@router.patch("/products/{sku}", response_model=ProductPublic, summary="Edit a product")
async def update_product(
    sku: str, body: ProductUpdate, _: Admin, uow: UnitOfWorkDep
) -> ProductPublic:
    if body.location is not None and body.on_hand is None:
        raise _invalid(("location",), "says where on_hand was counted: give on_hand too")
    changes = body.model_dump(exclude={"location"})
    product = await use_cases.update_product(
        sku, use_cases.ProductChanges(**changes), uow, body.location or DEFAULT_LOCATION
    )
    return product_public(product)


@router.post(
    "/products/{sku}/restock",
    response_model=ProductPublic,
    summary="Add delivered stock; closes the open replenishment request",
)
async def restock_product(
    sku: str,
    body: Restock,
    _: Admin,
    uow: UnitOfWorkDep,
    idempotency_key: Annotated[
        IdempotencyKey, idempotency_key_header("Counts a delivery once; same as `reference`")
    ] = None,
) -> ProductPublic:
    product = await receive_stock(
        sku, body.quantity, body.reference or idempotency_key, uow, body.location
    )
    return product_public(product)


@router.get(
    "/replenishments",
    response_model=ReplenishmentPage,
    tags=["replenishment"],
    summary="Replenishment requests raised by low stock (open ones by default)",
)
async def list_replenishments(
    _: Admin,
    uow: UnitOfWorkDep,
    status: Annotated[Literal["open", "fulfilled", "all"], Query()] = "open",
    location: Annotated[LocationCode | None, Query(description="only for this location")] = None,
    cursor: Annotated[CursorId | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReplenishmentPage:
    async with uow:
        page, next_cursor = await views.replenishments_page(
            uow.connection,
            status=None if status == "all" else status,
            location=location,
            after=cursor,
            limit=limit,
        )
    return ReplenishmentPage(
        items=[ReplenishmentPublic(**row) for row in page], next_cursor=next_cursor
    )
