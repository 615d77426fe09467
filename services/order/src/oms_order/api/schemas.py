"""HTTP shapes of the order API (separate from tables and from wire messages)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from oms_order.domain.model import MAX_LINES, MAX_QUANTITY
from oms_runtime.validation import NOT_BLANK, WHOLE_NUMBER, CountryCode, StrictInput

SkuField = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Stock keeping unit: letters, digits, '.', '_' or '-', up to 64",
        examples=["SKU-1"],
    ),
]


_Strict = StrictInput


class AddressIn(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200), NOT_BLANK]
    line1: Annotated[str, Field(min_length=1, max_length=200), NOT_BLANK]
    line2: Annotated[str | None, Field(max_length=200)] = None
    city: Annotated[str, Field(min_length=1, max_length=100), NOT_BLANK]
    postal_code: Annotated[str, Field(min_length=1, max_length=20), NOT_BLANK]
    country: CountryCode


class OrderItemIn(_Strict):
    sku: SkuField
    quantity: Annotated[int, Field(gt=0, le=MAX_QUANTITY), WHOLE_NUMBER]


class PaymentIn(_Strict):
    token: Annotated[
        str,
        Field(min_length=1, max_length=200, description="Card token from the gateway"),
        NOT_BLANK,
    ]


class OrderCreate(_Strict):
    customer_id: Annotated[
        str | None,
        Field(min_length=1, max_length=100, description="Only admins may set it"),
        NOT_BLANK,
    ] = None
    items: Annotated[list[OrderItemIn], Field(min_length=1, max_length=MAX_LINES)]
    shipping_address: AddressIn
    payment: PaymentIn


class OrderUpdate(_Strict):
    """What may change after checkout. At least one field."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    shipping_address: AddressIn | None = None
    items: Annotated[
        list[OrderItemIn] | None,
        Field(
            min_length=1,
            max_length=MAX_LINES,
            description="The complete new list of lines (replaces the old one)",
        ),
    ] = None

    @model_validator(mode="after")
    def _something_to_change(self) -> OrderUpdate:
        if self.shipping_address is None and self.items is None:
            raise ValueError("give shipping_address and/or items")
        return self


class OrderItemOut(BaseModel):
    sku: str
    quantity: int
    unit_price: int | None = Field(description="Minor units; known once stock is reserved")


class AddressOut(BaseModel):
    name: str
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country: str


class ParcelItemOut(BaseModel):
    sku: str
    quantity: int


class FulfillmentOut(BaseModel):
    id: str
    location: str = Field(description="The stock location that sends this parcel")
    items: list[ParcelItemOut]
    status: str = Field(
        description="pending, created (dispatch note made), dispatched, delivered, "
        "cancelled or failed"
    )
    shipment_id: str | None
    tracking_number: str | None
    carrier: str | None = None
    dispatched_at: datetime | None = None


class OrderPublic(BaseModel):
    id: str
    customer_id: str
    status: str
    status_reason: str | None
    status_detail: dict[str, Any]
    items: list[OrderItemOut]
    total: int | None = Field(description="Minor units; known once stock is reserved")
    currency: str | None
    shipping_address: AddressOut
    pending_shipping_address: AddressOut | None = Field(
        None, description="An address change waiting for shipping to agree"
    )
    payment_id: str | None
    shipment_id: str | None = Field(description="The first parcel's")
    carrier: str | None
    tracking_number: str | None = Field(description="The first parcel's")
    fulfillments: list[FulfillmentOut] = Field(
        default_factory=list,
        description="One parcel per stock location sending part of the order",
    )
    created_at: datetime
    updated_at: datetime | None


class OrderPage(BaseModel):
    items: list[OrderPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class HistoryEntry(BaseModel):
    occurred_at: datetime
    step: str
    status: str
    detail: dict[str, Any]
    message_id: str | None


class OrderHistory(BaseModel):
    order_id: str
    entries: list[HistoryEntry]
