"""Payment API (admin): payments, refunds, the gateway audit trail, settlement. What
a use case refuses answers by the service's one table (`api/problems.py`)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from oms_payment.db import views
from oms_payment.db.unit_of_work import SqlPaymentUnitOfWork
from oms_payment.domain.model import CaptureStatus, PaymentStatus
from oms_payment.handlers import payments as use_cases
from oms_runtime.auth import Admin
from oms_runtime.http import request_unit_of_work
from oms_runtime.problems import Problem
from oms_runtime.validation import (
    NOT_BLANK,
    WHOLE_NUMBER,
    IdempotencyKey,
    IsoDate,
    StrictInput,
    idempotency_key_header,
)

router = APIRouter(tags=["payments"])
UnitOfWorkDep = Annotated[SqlPaymentUnitOfWork, Depends(request_unit_of_work)]


class CapturePublic(BaseModel):
    fulfillment_id: str | None = Field(
        description="The parcel; null: the order's one capture (from before parcels)"
    )
    amount: int
    status: CaptureStatus = Field(
        description="waiting (for the capture before it to be answered), pending (at "
        "the gateway), succeeded, failed"
    )
    final: bool = Field(description="The last capture: the rest of the hold was released")
    error: str | None


class PaymentPublic(BaseModel):
    id: str
    order_id: str
    status: PaymentStatus = Field(
        description="`partially_captured` (an extension of the design's statuses): some "
        "parcels captured, the rest of the authorization still held for the others"
    )
    amount: int
    authorized_amount: int
    captured_amount: int
    refunded_amount: int
    keep_amount: int | None = Field(
        description="What a partially cancelled order keeps (its parcels that left); "
        "null unless cancelled"
    )
    captures: list[CapturePublic] = Field(description="One per parcel, in the order asked")
    currency: str
    failure_reason: str | None
    decline_code: str | None
    created_at: datetime
    updated_at: datetime


class PaymentPage(BaseModel):
    items: list[PaymentPublic]
    next_cursor: str | None


class RefundIn(StrictInput):
    amount: Annotated[int, Field(gt=0, description="Minor units"), WHOLE_NUMBER]
    reason: Annotated[str, Field(min_length=1, max_length=200), NOT_BLANK] = "requested_by_staff"


class RefundPublic(BaseModel):
    id: str
    amount: int
    reason: str
    status: str = Field(description="pending (at the gateway), succeeded, failed")
    return_id: str | None = Field(
        default=None, description="The return it gives the money back for, if any"
    )
    error: str | None = Field(
        default=None, description="Why it failed: the gateway's refusal, or its last error"
    )


class RefundAccepted(BaseModel):
    refund: RefundPublic
    payment: PaymentPublic


class GatewayCall(BaseModel):
    operation: str
    idempotency_key: str
    request: dict[str, Any]
    status_code: int | None
    response: dict[str, Any] | None
    error: str | None
    latency_ms: float
    created_at: datetime


class SettlementRow(BaseModel):
    day: date
    currency: str
    captured: int
    refunded: int
    net: int


class SettlementReport(BaseModel):
    start: date
    end: date
    rows: list[SettlementRow]


def payment_public(row: dict[str, Any]) -> PaymentPublic:
    return PaymentPublic(**{**row, "id": str(row["id"])})


@router.get("/payments", response_model=PaymentPage, summary="Payments, optionally of one order")
async def list_payments(
    _: Admin,
    uow: UnitOfWorkDep,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[uuid.UUID | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PaymentPage:
    async with uow:
        page, next_cursor = await views.payments_page(
            uow.connection, order_id=order_id, after=cursor, limit=limit
        )
    return PaymentPage(items=[payment_public(row) for row in page], next_cursor=next_cursor)


@router.get("/payments/{payment_id}", response_model=PaymentPublic, summary="One payment")
async def get_payment(payment_id: uuid.UUID, _: Admin, uow: UnitOfWorkDep) -> PaymentPublic:
    async with uow:
        row = await views.payment(uow.connection, payment_id)
    if row is None:
        raise use_cases.PaymentNotFound(str(payment_id))
    return payment_public(row)


@router.post(
    "/payments/{payment_id}/refund",
    response_model=RefundAccepted,
    status_code=202,
    summary="Refund (part of) a captured payment; several refunds may follow each other",
)
async def refund(
    payment_id: uuid.UUID,
    body: RefundIn,
    _: Admin,
    uow: UnitOfWorkDep,
    response: Response,
    idempotency_key: Annotated[
        IdempotencyKey, idempotency_key_header("Asking again refunds once")
    ] = None,
) -> RefundAccepted:
    made, replayed = await use_cases.refund_payment(
        str(payment_id), body.amount, body.reason, idempotency_key, uow
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    async with uow:
        row = await views.payment(uow.connection, payment_id)
    assert row is not None
    return RefundAccepted(
        refund=RefundPublic(id=made.id, amount=made.amount, reason=made.reason, status=made.status),
        payment=payment_public(row),
    )


@router.get(
    "/payments/{payment_id}/refunds",
    response_model=list[RefundPublic],
    summary="Refunds of a payment",
)
async def list_refunds(payment_id: uuid.UUID, _: Admin, uow: UnitOfWorkDep) -> list[RefundPublic]:
    async with uow:
        rows = await views.refunds_of(uow.connection, payment_id)
    return [RefundPublic(**row) for row in rows]


@router.get(
    "/payments/{payment_id}/gateway-calls",
    response_model=list[GatewayCall],
    summary="Every call made to the gateway for this payment (audit)",
)
async def list_gateway_calls(
    payment_id: uuid.UUID, _: Admin, uow: UnitOfWorkDep
) -> list[GatewayCall]:
    async with uow:
        rows = await views.gateway_calls(uow.connection, payment_id)
    return [GatewayCall(**row) for row in rows]


@router.get(
    "/reports/settlement",
    response_model=SettlementReport,
    tags=["reports"],
    summary="Captured, refunded and net money per day (UTC) and currency",
)
async def settlement_report(
    _: Admin,
    uow: UnitOfWorkDep,
    start: Annotated[
        IsoDate | None, Query(alias="from", description="first day, inclusive")
    ] = None,
    end: Annotated[IsoDate | None, Query(alias="to", description="last day, inclusive")] = None,
) -> SettlementReport:
    last = end or datetime.now(UTC).date()
    first = start or last - timedelta(days=30)
    if first > last:
        raise Problem(422, "invalid-range", "Invalid range", "`from` is after `to`", field="from")
    async with uow:
        rows = await views.settlement(
            uow.connection,
            datetime.combine(first, time.min, UTC),
            datetime.combine(last + timedelta(days=1), time.min, UTC),
        )
    return SettlementReport(start=first, end=last, rows=[SettlementRow(**row) for row in rows])
