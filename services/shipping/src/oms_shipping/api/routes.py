"""Shipping API: dispatch notes for staff, the carrier webhook, public tracking. What
a use case refuses answers by the service's one table (`api/problems.py`)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from oms_runtime.auth import Admin
from oms_runtime.http import request_unit_of_work
from oms_runtime.problems import Problem
from oms_shipping.api.schemas import (
    ShipmentFailure,
    ShipmentPage,
    ShipmentPublic,
    Tracking,
    TrackingEventIn,
    TrackingEventOut,
)
from oms_shipping.api.signatures import SignatureHeaders, verify_carrier_signature
from oms_shipping.db import views
from oms_shipping.db.unit_of_work import SqlShippingUnitOfWork
from oms_shipping.domain.model import ShipmentStatus, TrackingEvent
from oms_shipping.handlers import shipments as use_cases

router = APIRouter(tags=["shipments"])
UnitOfWorkDep = Annotated[SqlShippingUnitOfWork, Depends(request_unit_of_work)]


def _events(rows: list[dict[str, Any]]) -> list[TrackingEventOut]:
    return [
        TrackingEventOut(status=r["status"], location=r["location"], occurred_at=r["occurred_at"])
        for r in rows
    ]


def _public(row: dict[str, Any], events: list[dict[str, Any]]) -> ShipmentPublic:
    return ShipmentPublic(**{**row, "id": str(row["id"]), "events": _events(events)})


async def _load_public(uow: SqlShippingUnitOfWork, shipment_id: str) -> ShipmentPublic:
    try:
        key = uuid.UUID(shipment_id)
    except ValueError as exc:
        raise use_cases.ShipmentNotFound(shipment_id) from exc
    async with uow:
        row = await views.shipment_by(uow.connection, id=key)
        if row is None:
            raise use_cases.ShipmentNotFound(shipment_id)
        events = await views.timelines(uow.connection, [key])
    return _public(row, events[key])


@router.get(
    "/shipments",
    response_model=ShipmentPage,
    summary="Shipments (one per parcel), optionally of one order, status or location",
)
async def list_shipments(
    _: Admin,
    uow: UnitOfWorkDep,
    order_id: Annotated[
        str | None, Query(max_length=64, description="Every parcel of this order")
    ] = None,
    status: Annotated[
        ShipmentStatus | None,
        Query(description="e.g. `created`: parcels waiting for the warehouse to dispatch"),
    ] = None,
    location: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="The parcels one stock location sends (its own warehouse queue)",
        ),
    ] = None,
    cursor: Annotated[uuid.UUID | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ShipmentPage:
    async with uow:
        page, next_cursor = await views.shipments_page(
            uow.connection,
            order_id=order_id,
            status=status.value if status else None,
            location=location,
            after=cursor,
            limit=limit,
        )
        events = await views.timelines(uow.connection, [row["id"] for row in page])
    return ShipmentPage(
        items=[_public(row, events[row["id"]]) for row in page], next_cursor=next_cursor
    )


@router.get("/shipments/{shipment_id}", response_model=ShipmentPublic, summary="One dispatch note")
async def get_shipment(shipment_id: str, _: Admin, uow: UnitOfWorkDep) -> ShipmentPublic:
    return await _load_public(uow, shipment_id)


@router.post(
    "/shipments/{shipment_id}/dispatch",
    response_model=ShipmentPublic,
    summary="Hand the parcel to the carrier (assigns the tracking number)",
)
async def dispatch_shipment(
    shipment_id: str, request: Request, _: Admin, uow: UnitOfWorkDep
) -> ShipmentPublic:
    await use_cases.dispatch(shipment_id, request.app.state.settings.carrier_name, uow)
    return await _load_public(request.app.state.unit_of_work(), shipment_id)


@router.post(
    "/shipments/{shipment_id}/fail",
    response_model=ShipmentPublic,
    summary="Declare the shipment failed (cannot be made, or lost); the order is compensated",
)
async def fail_shipment(
    shipment_id: str, body: ShipmentFailure, request: Request, _: Admin, uow: UnitOfWorkDep
) -> ShipmentPublic:
    await use_cases.fail(shipment_id, body.reason, uow)
    return await _load_public(request.app.state.unit_of_work(), shipment_id)


@router.post(
    "/shipments/{shipment_id}/tracking-events",
    response_model=Tracking,
    status_code=202,
    summary="Carrier webhook (signed the Standard Webhooks way)",
    description="Signed with `webhook-id`, `webhook-timestamp` (Unix seconds, within 5 "
    "minutes) and `webhook-signature: v1,<base64 HMAC-SHA256 of "
    '"<webhook-id>.<webhook-timestamp>.<body>">`, keyed with OMS_CARRIER_SECRET. The body '
    "names the parcel's `tracking_number`. A webhook id seen before is acknowledged "
    "without effect.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": TrackingEventIn.model_json_schema()}},
        }
    },
)
async def receive_tracking_event(
    shipment_id: str,
    request: Request,
    uow: UnitOfWorkDep,
    webhook_id: Annotated[str | None, Header(description="Unique per event")] = None,
    webhook_timestamp: Annotated[str | None, Header(description="Unix seconds")] = None,
    webhook_signature: Annotated[
        str | None, Header(description="`v1,<base64 HMAC-SHA256>`, space separated")
    ] = None,
    x_signature: Annotated[
        str | None,
        Header(
            description="Legacy `sha256=<hex HMAC of the body>`; refused unless "
            "OMS_CARRIER_ACCEPT_LEGACY_SIGNATURE=true"
        ),
    ] = None,
) -> Tracking:
    raw = await request.body()
    settings = request.app.state.settings
    signed_id = verify_carrier_signature(
        raw,
        SignatureHeaders(webhook_id, webhook_timestamp, webhook_signature, x_signature),
        settings.carrier_secret,
        accept_legacy=settings.carrier_accept_legacy_signature,
    )
    try:
        body = TrackingEventIn.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from exc
    event = TrackingEvent(ShipmentStatus(body.status), body.location, body.occurred_at)
    shipment = await use_cases.record_tracking_event(
        shipment_id, body.tracking_number, event, uow, webhook_id=signed_id
    )
    assert shipment.tracking_number is not None
    return await _tracking(request.app.state.unit_of_work(), shipment.tracking_number)


async def _tracking(uow: SqlShippingUnitOfWork, tracking_number: str) -> Tracking:
    async with uow:
        row = await views.shipment_by(uow.connection, tracking_number=tracking_number)
        if row is None:
            raise Problem(
                404,
                "tracking-not-found",
                "Unknown tracking number",
                f"No shipment with tracking number {tracking_number}",
            )
        events = await views.timelines(uow.connection, [row["id"]])
    return Tracking(
        tracking_number=tracking_number,
        carrier=row["carrier"],
        status=row["status"],
        events=_events(events[row["id"]]),
    )


@router.get(
    "/tracking/{tracking_number}",
    response_model=Tracking,
    summary="Public tracking timeline (no personal data, no auth)",
)
async def get_tracking(tracking_number: str, uow: UnitOfWorkDep) -> Tracking:
    return await _tracking(uow, tracking_number)
