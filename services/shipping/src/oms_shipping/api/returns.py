"""Return parcels for the warehouse: the returns to receive, one return, and its
receipt. What the receipt's rules refuse answers by the service's one table
(`api/problems.py`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from oms_runtime.auth import Admin
from oms_runtime.http import request_unit_of_work
from oms_shipping.api.schemas import ReceiptIn, ReturnPage, ReturnPublic
from oms_shipping.db import views
from oms_shipping.db.unit_of_work import SqlShippingUnitOfWork
from oms_shipping.domain.returns import Condition, ReceivedLine, ReturnStatus
from oms_shipping.handlers import returns as use_cases

router = APIRouter(tags=["returns"])
UnitOfWorkDep = Annotated[SqlShippingUnitOfWork, Depends(request_unit_of_work)]
ReturnId = Annotated[str, Path(min_length=1, max_length=64, description="The return's id")]


def _public(row: dict[str, Any]) -> ReturnPublic:
    return ReturnPublic(**{**row, "items": row["lines"]})


async def _load_public(uow: SqlShippingUnitOfWork, return_id: str) -> ReturnPublic:
    async with uow:
        row = await views.return_by_id(uow.connection, return_id)
    if row is None:
        raise use_cases.ReturnNotFound(return_id)
    return _public(row)


@router.get(
    "/returns",
    response_model=ReturnPage,
    summary="Return parcels, optionally of one status, order or location",
)
async def list_returns(
    _: Admin,
    uow: UnitOfWorkDep,
    status: Annotated[
        ReturnStatus | None,
        Query(description="`label_created`: returns on their way, for the warehouse to receive"),
    ] = None,
    order_id: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Every return of this order")
    ] = None,
    location: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="Returns with goods going back to this stock location",
        ),
    ] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReturnPage:
    async with uow:
        page, next_cursor = await views.returns_page(
            uow.connection,
            status=status.value if status else None,
            order_id=order_id,
            location=location,
            after=cursor,
            limit=limit,
        )
    return ReturnPage(items=[_public(row) for row in page], next_cursor=next_cursor)


@router.get("/returns/{return_id}", response_model=ReturnPublic, summary="One return parcel")
async def get_return(return_id: ReturnId, _: Admin, uow: UnitOfWorkDep) -> ReturnPublic:
    return await _load_public(uow, return_id)


@router.post(
    "/returns/{return_id}/receive",
    response_model=ReturnPublic,
    summary="Book in the returned parcel: what arrived, and in which state",
    description="Less than announced is fine (only what arrived is refunded). Refused: "
    "a SKU the return did not announce, more units of a SKU than announced (summed over "
    "conditions), nothing at all (`422`, naming the field); a return received before or "
    "cancelled (`409`). Announces `shipping.return_received`.",
)
async def receive_return(
    return_id: ReturnId, body: ReceiptIn, request: Request, _: Admin, uow: UnitOfWorkDep
) -> ReturnPublic:
    items = [
        ReceivedLine(item.sku, item.quantity, Condition(item.condition)) for item in body.items
    ]
    await use_cases.receive(return_id, items, uow)
    return await _load_public(request.app.state.unit_of_work(), return_id)
