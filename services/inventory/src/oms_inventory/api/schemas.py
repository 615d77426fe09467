"""HTTP shapes of the inventory admin API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from oms_runtime.money import CurrencyCode
from oms_runtime.validation import NOT_BLANK, WHOLE_NUMBER, CountryCode, StrictInput

Sku = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        examples=["SKU-1"],
        description="Letters, digits, '.', '_' or '-', up to 64",
    ),
]
# A price of 0 cannot be paid: the gateway declines authorizations of nothing, so
# every order of such a product would end `payment_declined`.
Price = Annotated[
    int,
    Field(gt=0, le=100_000_000_00, description="Minor units (cents); at least 1"),
    WHOLE_NUMBER,
]
Count = Annotated[int, Field(ge=0, le=1_000_000_000), WHOLE_NUMBER]
Name = Annotated[str, Field(min_length=1, max_length=200), NOT_BLANK]
LocationCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        examples=["BER-1"],
        description="A stock location's code: letters, digits, '.', '_' or '-', up to 64",
    ),
]
AtLocation = Annotated[
    LocationCode, Field(description="The stock location (`default` when not given)")
]
Priority = Annotated[int, Field(ge=0, le=1_000_000), WHOLE_NUMBER]


_Strict = StrictInput


class LocationCreate(_Strict):
    code: LocationCode
    name: Name
    country: CountryCode
    priority: Annotated[
        Priority, Field(description="Lower is preferred when several could send an order")
    ] = 100
    serves: Annotated[
        list[CountryCode] | None,
        Field(min_length=1, max_length=300, description="ISO countries it ships to (absent: all)"),
    ] = None


class LocationPublic(BaseModel):
    code: str
    name: str
    country: str | None
    priority: int
    serves: list[str] | None


class LocationList(BaseModel):
    items: list[LocationPublic]


class StockLine(_Strict):
    location: LocationCode
    on_hand: Count


class ProductCreate(_Strict):
    sku: Sku
    name: Name
    unit_price: Price
    currency: CurrencyCode
    on_hand: Annotated[
        Count | None, Field(description="Initial stock at `default` (or give `stock`)")
    ] = None
    stock: Annotated[
        list[StockLine] | None,
        Field(min_length=1, max_length=1000, description="Initial stock per location"),
    ] = None
    low_stock_threshold: Count = 0
    reorder_quantity: Count = 0


class ProductUpdate(_Strict):
    name: Name | None = None
    unit_price: Price | None = None
    low_stock_threshold: Count | None = None
    reorder_quantity: Count | None = None
    on_hand: Annotated[Count | None, Field(description="Manual stock count correction")] = None
    location: Annotated[
        LocationCode | None, Field(description="Where `on_hand` was counted (default: `default`)")
    ] = None


class Restock(_Strict):
    quantity: Annotated[int, Field(gt=0, le=1_000_000), WHOLE_NUMBER]
    reference: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=100,
            description="Delivery note number: the same delivery is counted once per location",
        ),
        NOT_BLANK,
    ] = None
    location: AtLocation = "default"


class StockAtLocation(BaseModel):
    location: str
    on_hand: int
    reserved: int
    available: int
    low_stock: bool
    # Returned units that came back damaged: counted, never on hand or sellable.
    damaged: int


class ProductPublic(BaseModel):
    sku: str
    name: str
    unit_price: int
    currency: str
    # Totals over every location.
    on_hand: int
    reserved: int
    available: int
    low_stock_threshold: int
    reorder_quantity: int
    # Returned damaged units at every location (not part of on_hand).
    damaged: int
    # Low at any location (or stocked nowhere).
    low_stock: bool
    locations: list[StockAtLocation]


class ProductPage(BaseModel):
    items: list[ProductPublic]
    next_cursor: str | None


class MovementPublic(BaseModel):
    id: int
    location: str
    reason: str
    on_hand_delta: int
    reserved_delta: int
    # Units of a return booked as damaged (reason `return_damaged`).
    damaged_delta: int
    order_id: str | None
    note: str | None
    created_at: datetime


class MovementPage(BaseModel):
    items: list[MovementPublic]
    next_cursor: str | None


class ReplenishmentPublic(BaseModel):
    id: int
    sku: str
    location: str
    quantity: int
    status: str
    available_at_request: int
    requested_at: datetime
    fulfilled_at: datetime | None
    fulfilled_by: str | None


class ReplenishmentPage(BaseModel):
    items: list[ReplenishmentPublic]
    next_cursor: str | None
