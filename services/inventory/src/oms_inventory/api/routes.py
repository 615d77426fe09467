"""Inventory admin API: products, stock levels, restocking. What a use case refuses
answers by the service's one table (`api/problems.py`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from oms_inventory.api.schemas import (
    MovementPage,
    MovementPublic,
    ProductCreate,
    ProductPage,
    ProductPublic,
    ProductUpdate,
    ReplenishmentPage,
    ReplenishmentPublic,
    Restock,
)
from oms_inventory.db import views
from oms_inventory.db.unit_of_work import SqlInventoryUnitOfWork
from oms_inventory.domain.model import Product
from oms_inventory.handlers import products as use_cases
from oms_inventory.handlers.stock import ProductNotFound, receive_stock
from oms_runtime.auth import Admin
from oms_runtime.http import request_unit_of_work
from oms_runtime.validation import CursorId, IdempotencyKey, idempotency_key_header

router = APIRouter(tags=["products"])


UnitOfWorkDep = Annotated[SqlInventoryUnitOfWork, Depends(request_unit_of_work)]


def product_public(product: Product | dict[str, Any]) -> ProductPublic:
    fields = product if isinstance(product, dict) else vars(product)
    on_hand, reserved = fields["on_hand"], fields["reserved"]
    return ProductPublic(
        sku=fields["sku"],
        name=fields["name"],
        unit_price=fields["unit_price"],
        currency=fields["currency"],
        on_hand=on_hand,
        reserved=reserved,
        available=on_hand - reserved,
        low_stock_threshold=fields["low_stock_threshold"],
        reorder_quantity=fields["reorder_quantity"],
        low_stock=on_hand - reserved <= fields["low_stock_threshold"],
    )


@router.post(
    "/products",
    status_code=201,
    response_model=ProductPublic,
    summary="Add a product with its initial stock",
)
async def create_product(body: ProductCreate, _: Admin, uow: UnitOfWorkDep) -> ProductPublic:
    product = Product.create(**body.model_dump())
    await use_cases.create_product(product, uow)
    return product_public(product)


@router.get("/products", response_model=ProductPage, summary="Products by SKU, paginated")
async def list_products(
    _: Admin,
    uow: UnitOfWorkDep,
    low_stock: Annotated[bool | None, Query(description="only (or no) low-stock products")] = None,
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


@router.get("/products/{sku}", response_model=ProductPublic, summary="One product")
async def get_product(sku: str, _: Admin, uow: UnitOfWorkDep) -> ProductPublic:
    async with uow:
        product = await uow.products.get(sku)
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
    cursor: Annotated[CursorId | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> MovementPage:
    async with uow:
        if await uow.products.get(sku) is None:
            raise ProductNotFound(sku)
        page, next_cursor = await views.movements_page(
            uow.connection, sku=sku, after=cursor, limit=limit
        )
    return MovementPage(items=[MovementPublic(**row) for row in page], next_cursor=next_cursor)


@router.patch("/products/{sku}", response_model=ProductPublic, summary="Edit a product")
async def update_product(
    sku: str, body: ProductUpdate, _: Admin, uow: UnitOfWorkDep
) -> ProductPublic:
    product = await use_cases.update_product(
        sku, use_cases.ProductChanges(**body.model_dump()), uow
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
    product = await receive_stock(sku, body.quantity, body.reference or idempotency_key, uow)
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
    cursor: Annotated[CursorId | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReplenishmentPage:
    async with uow:
        page, next_cursor = await views.replenishments_page(
            uow.connection,
            status=None if status == "all" else status,
            after=cursor,
            limit=limit,
        )
    return ReplenishmentPage(
        items=[ReplenishmentPublic(**row) for row in page], next_cursor=next_cursor
    )
