"""Returns over HTTP: a customer asks to send goods back; staff approve or reject;
operators retry or force a refund that keeps failing. (The warehouse receives a
return on the shipping service.)"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from oms_order.api.dependencies import UnitOfWorkDep, idempotent_request, own_orders_only
from oms_order.api.schemas import SkuField
from oms_order.domain.model import MAX_LINES, MAX_QUANTITY
from oms_order.domain.returns import Return
from oms_order.handlers import returns as use_cases
from oms_runtime.auth import Admin, Authenticated, admin_principal
from oms_runtime.http import location_documented
from oms_runtime.validation import (
    NOT_BLANK,
    WHOLE_NUMBER,
    IdempotencyKey,
    StrictInput,
    idempotency_key_header,
)

router = APIRouter(tags=["returns"])
admin = APIRouter(prefix="/admin", tags=["operators"], dependencies=[Depends(admin_principal)])


class ReturnItemIn(StrictInput):
    sku: SkuField
    quantity: Annotated[int, Field(gt=0, le=MAX_QUANTITY), WHOLE_NUMBER]


class ReturnIn(StrictInput):
    items: Annotated[list[ReturnItemIn], Field(min_length=1, max_length=MAX_LINES)]
    reason: Annotated[str, Field(min_length=1, max_length=500), NOT_BLANK]


class RejectionIn(StrictInput):
    reason: Annotated[str, Field(min_length=1, max_length=500), NOT_BLANK]


class ReturnItemOut(BaseModel):
    sku: str
    quantity: int
    received_quantity: int
    condition: str | None = Field(description="resellable, damaged, or mixed; null until received")
    location: str = Field(description="Where the units left from, and go back to")
    unit_price: int


class ReturnPublic(BaseModel):
    id: str
    order_id: str
    status: str = Field(
        description="requested, approved, rejected, cancelled, received, refunded, "
        "requires_attention"
    )
    status_reason: str | None
    reason: str
    items: list[ReturnItemOut]
    refund_amount: int | None = Field(description="Minor units; known once received")
    refunded_amount: int
    currency: str
    return_tracking_number: str | None
    created_at: datetime
    updated_at: datetime


class ReturnList(BaseModel):
    items: list[ReturnPublic]


class ReturnPage(BaseModel):
    items: list[ReturnPublic]
    next_cursor: str | None


def return_public(found: Return) -> ReturnPublic:
    return ReturnPublic(
        id=found.id,
        order_id=found.order_id,
        status=found.status.value,
        status_reason=found.status_reason,
        reason=found.reason,
        items=[
            ReturnItemOut(
                sku=line.sku,
                quantity=line.quantity,
                received_quantity=line.received_quantity,
                condition=_condition(line.resellable, line.damaged),
                location=line.location,
                unit_price=line.unit_price,
            )
            for line in found.lines
        ],
        refund_amount=found.refund_amount,
        refunded_amount=found.refunded_amount,
        currency=found.currency,
        return_tracking_number=found.return_tracking_number,
        created_at=found.created_at,
        updated_at=found.updated_at,
    )


def _condition(resellable: int, damaged: int) -> str | None:
    if resellable and damaged:
        return "mixed"
    if resellable:
        return "resellable"
    return "damaged" if damaged else None


ReturnKey = Annotated[
    IdempotencyKey,
    idempotency_key_header("Asking again with the same key and body answers the same return"),
]


@router.post(
    "/orders/{order_id}/returns",
    status_code=202,
    response_model=ReturnPublic,
    summary="Ask to send shipped goods back",
    responses={
        202: location_documented(
            "The return: `/returns/{id}`",
            {
                "return": "GET /returns/{return_id}",
                "approve": "POST /returns/{return_id}/approve",
                "reject": "POST /returns/{return_id}/reject",
                "cancel": "POST /returns/{return_id}/cancel",
                "retry": "POST /admin/returns/{return_id}/retry",
                "force": "POST /admin/returns/{return_id}/force",
            },
            parameter="return_id",
        ),
        404: {"description": "No such order (or not yours)"},
        409: {
            "description": "Not returnable: `type` says why (not shipped, too late, "
            "more than shipped and not yet returned)"
        },
    },
)
async def request_return(
    order_id: str,
    body: ReturnIn,
    principal: Authenticated,
    uow: UnitOfWorkDep,
    response: Response,
    idempotency_key: ReturnKey = None,
) -> ReturnPublic:
    items: dict[str, int] = {}
    for item in body.items:
        items[item.sku] = items.get(item.sku, 0) + item.quantity
    answered = await use_cases.request_return(
        order_id,
        items,
        body.reason,
        uow,
        customer_id=own_orders_only(principal),
        idempotency=idempotent_request(
            idempotency_key,
            principal,
            "POST /orders/returns",
            {"order_id": order_id, **body.model_dump(mode="json")},
        ),
        render=lambda created: return_public(created).model_dump(mode="json"),
    )
    if answered.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    created = (
        ReturnPublic.model_validate(answered.answer)
        if answered.answer is not None
        else return_public(answered.resource)
    )
    response.headers["Location"] = f"/returns/{created.id}"
    return created


@router.get("/orders/{order_id}/returns", response_model=ReturnList, summary="The order's returns")
async def returns_of_order(
    order_id: str, principal: Authenticated, uow: UnitOfWorkDep
) -> ReturnList:
    found = await use_cases.returns_of_order(order_id, uow, customer_id=own_orders_only(principal))
    return ReturnList(items=[return_public(each) for each in found])


@router.get("/returns/{return_id}", response_model=ReturnPublic, summary="One return")
async def get_return(return_id: str, principal: Authenticated, uow: UnitOfWorkDep) -> ReturnPublic:
    return return_public(
        await use_cases.get_return(return_id, uow, customer_id=own_orders_only(principal))
    )


@router.post(
    "/returns/{return_id}/approve",
    response_model=ReturnPublic,
    summary="Approve a requested return (staff): shipping issues the return label",
)
async def approve_return(return_id: str, operator: Admin, uow: UnitOfWorkDep) -> ReturnPublic:
    return return_public(await use_cases.approve_return(return_id, operator.name, uow))


@router.post(
    "/returns/{return_id}/reject",
    response_model=ReturnPublic,
    summary="Reject a requested return (staff), with the reason",
)
async def reject_return(
    return_id: str, body: RejectionIn, operator: Admin, uow: UnitOfWorkDep
) -> ReturnPublic:
    return return_public(await use_cases.reject_return(return_id, body.reason, operator.name, uow))


@router.post(
    "/returns/{return_id}/cancel",
    response_model=ReturnPublic,
    summary="Call a return off before the goods arrive (nothing is refunded)",
)
async def cancel_return(
    return_id: str, principal: Authenticated, uow: UnitOfWorkDep
) -> ReturnPublic:
    return return_public(
        await use_cases.cancel_return(return_id, uow, customer_id=own_orders_only(principal))
    )


@admin.get(
    "/returns",
    response_model=ReturnPage,
    summary="Returns that need an operator (a refund that keeps failing), or any state",
)
async def returns_for_operators(
    uow: UnitOfWorkDep,
    state: Annotated[
        Literal[
            "requires_attention",
            "requested",
            "approved",
            "received",
            "refunded",
            "rejected",
            "cancelled",
        ],
        Query(description="requires_attention: a refund the gateway keeps refusing"),
    ] = "requires_attention",
    cursor: Annotated[uuid.UUID | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReturnPage:
    async with uow:
        found = await uow.returns.search(statuses=[state], after=cursor, limit=limit + 1)
    more = len(found) > limit
    page = found[:limit]
    return ReturnPage(
        items=[return_public(each) for each in page],
        next_cursor=page[-1].id if more else None,
    )


@admin.post(
    "/returns/{return_id}/retry",
    response_model=ReturnPublic,
    summary="Try the refund again (after fixing what the gateway refused)",
)
async def retry_return(return_id: str, operator: Admin, uow: UnitOfWorkDep) -> ReturnPublic:
    return return_public(await use_cases.retry_return(return_id, operator.name, uow))


@admin.post(
    "/returns/{return_id}/force",
    response_model=ReturnPublic,
    summary="Declare the refund made by hand (e.g. in the gateway's dashboard)",
)
async def force_return(return_id: str, operator: Admin, uow: UnitOfWorkDep) -> ReturnPublic:
    return return_public(await use_cases.force_return(return_id, operator.name, uow))


router.include_router(admin)
