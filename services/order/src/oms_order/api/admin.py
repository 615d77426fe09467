"""Operators' view of the sagas: stuck orders, and the levers to unstick them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from oms_order.api.dependencies import UnitOfWorkDep
from oms_order.api.presenters import order_public
from oms_order.api.schemas import OrderPublic
from oms_order.db import views
from oms_order.handlers import orders as use_cases
from oms_runtime.auth import Admin, Principal, admin_principal

router = APIRouter(prefix="/admin", tags=["operators"], dependencies=[Depends(admin_principal)])


class StuckOrder(BaseModel):
    id: str
    customer_id: str
    status: str
    status_reason: str | None
    pending_compensations: list[str]
    deadline_at: datetime | None
    step_attempts: int
    updated_at: datetime


class StuckOrderPage(BaseModel):
    items: list[StuckOrder]
    next_cursor: str | None


@router.get(
    "/orders",
    response_model=StuckOrderPage,
    summary="Orders that need an operator, or whose step is overdue",
)
async def stuck_orders(
    uow: UnitOfWorkDep,
    state: Annotated[
        Literal["requires_attention", "overdue"],
        Query(
            description="requires_attention: parked for an operator; overdue: past "
            "their step's deadline and not yet moved on by the sweeper"
        ),
    ] = "requires_attention",
    cursor: Annotated[uuid.UUID | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> StuckOrderPage:
    async with uow:
        page, next_cursor = await views.stuck_orders(
            uow.connection, state=state, after=cursor, limit=limit
        )
    return StuckOrderPage(
        items=[StuckOrder(**{**row, "id": str(row["id"])}) for row in page],
        next_cursor=next_cursor,
    )


@router.post(
    "/orders/{order_id}/retry",
    response_model=OrderPublic,
    summary="Try the failing compensation or settlement steps again",
)
async def retry(order_id: str, operator: Admin, uow: UnitOfWorkDep) -> OrderPublic:
    return await _act(use_cases.retry_order, order_id, operator, uow)


@router.post(
    "/orders/{order_id}/force",
    response_model=OrderPublic,
    summary="Declare the failing steps done by hand (e.g. voided in the gateway's dashboard)",
)
async def force(order_id: str, operator: Admin, uow: UnitOfWorkDep) -> OrderPublic:
    return await _act(use_cases.force_compensation, order_id, operator, uow)


async def _act(
    action: use_cases.OperatorAction, order_id: str, operator: Principal, uow: UnitOfWorkDep
) -> OrderPublic:
    return order_public(await action(order_id, operator.name, uow))
