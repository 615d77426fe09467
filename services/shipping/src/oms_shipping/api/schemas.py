"""HTTP shapes of the shipping API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from oms_runtime.validation import NOT_BLANK, WHOLE_NUMBER, IsoDateTime, StrictInput


class TrackingEventIn(StrictInput):
    """What the carrier's webhook sends."""

    tracking_number: Annotated[
        str,
        Field(min_length=1, max_length=64, description="The parcel this event is about"),
        NOT_BLANK,
    ]
    status: Literal["in_transit", "out_for_delivery", "delivered", "exception"]
    location: Annotated[str | None, Field(max_length=200)] = None
    occurred_at: IsoDateTime

    @field_validator("occurred_at")
    @classmethod
    def _representable_in_utc(cls, value: datetime) -> datetime:
        # Year 1 at +01:00 is before year 1 in UTC: no datetime can hold it.
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError("out of range") from exc


class TrackingEventOut(BaseModel):
    status: str
    location: str | None
    occurred_at: datetime


class LineOut(BaseModel):
    sku: str
    quantity: int


class AddressOut(BaseModel):
    name: str
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country: str


class ShipmentPublic(BaseModel):
    """The dispatch note of one parcel: what to pack, where it leaves from, where it
    goes, and how it travels."""

    id: str
    order_id: str
    fulfillment_id: str = Field(
        description="The parcel (the order's id for an order shipped before parcels)"
    )
    location: str = Field(description="The stock location that packs and sends it")
    status: str
    carrier: str | None
    tracking_number: str | None
    lines: list[LineOut]
    address: AddressOut | None
    failure_reason: str | None
    events: list[TrackingEventOut]
    dispatched_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class ShipmentPage(BaseModel):
    items: list[ShipmentPublic]
    next_cursor: str | None


class Tracking(BaseModel):
    """Public tracking view: no name, no address."""

    tracking_number: str
    carrier: str | None
    status: str
    events: list[TrackingEventOut]


class ShipmentFailure(StrictInput):
    reason: Annotated[
        str, Field(min_length=1, max_length=100, examples=["damaged_in_warehouse"]), NOT_BLANK
    ]


# -- return parcels ---------------------------------------------------------------------


class ReturnLineOut(BaseModel):
    sku: str
    quantity: int
    location: str = Field(description="The stock location the units left from, and go back to")


class ReceivedLineOut(BaseModel):
    sku: str
    quantity: int
    condition: str = Field(description="resellable or damaged")


class ReturnPublic(BaseModel):
    """A return parcel: what the customer sends back, and what arrived."""

    id: str = Field(description="The return's id (the order service's)")
    order_id: str
    status: str = Field(description="label_created (to receive), received, cancelled")
    return_tracking_number: str | None = Field(
        description="The label's; null for a return cancelled before its label"
    )
    items: list[ReturnLineOut] = Field(description="What the return announced")
    received: list[ReceivedLineOut] = Field(description="What arrived, per SKU and condition")
    received_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ReturnPage(BaseModel):
    items: list[ReturnPublic]
    next_cursor: str | None


class ReceivedItemIn(StrictInput):
    sku: Annotated[str, Field(min_length=1, max_length=64), NOT_BLANK]
    quantity: Annotated[
        int,
        Field(ge=0, le=1_000_000, description="Units of the SKU that arrived in this condition"),
        WHOLE_NUMBER,
    ]
    condition: Literal["resellable", "damaged"]


class ReceiptIn(StrictInput):
    """What the warehouse found in the returned parcel. Less than announced is fine;
    more of a SKU than announced (whatever the condition), a SKU not announced, or
    nothing at all is refused."""

    items: Annotated[list[ReceivedItemIn], Field(min_length=1, max_length=200)]
