"""Payment API (admin): look up payments."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from oms_payment.db import views
from oms_payment.db.unit_of_work import PaymentUnitOfWork
from oms_runtime.auth import Admin
from oms_runtime.http import request_unit_of_work
from oms_runtime.problems import Problem

router = APIRouter(tags=["payments"])
UnitOfWorkDep = Annotated[PaymentUnitOfWork, Depends(request_unit_of_work)]


class PaymentPublic(BaseModel):
    id: str
    order_id: str
    status: str
    amount: int
    authorized_amount: int
    captured_amount: int
    refunded_amount: int
    currency: str
    failure_reason: str | None
    decline_code: str | None
    created_at: datetime
    updated_at: datetime


class PaymentPage(BaseModel):
    items: list[PaymentPublic]
    next_cursor: str | None


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
        raise Problem(404, "payment-not-found", "Payment not found", f"No payment {payment_id}")
    return payment_public(row)
