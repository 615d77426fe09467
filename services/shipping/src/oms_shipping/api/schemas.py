"""HTTP shapes of the shipping API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from oms_runtime.validation import NOT_BLANK, IsoDateTime, StrictInput


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
