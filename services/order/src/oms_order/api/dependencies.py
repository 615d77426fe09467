"""What the order API's routes are given."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import Depends

from oms_order.db.unit_of_work import SqlOrderUnitOfWork
from oms_order.handlers.orders import IdempotentRequest
from oms_runtime.auth import Principal
from oms_runtime.http import request_unit_of_work

UnitOfWorkDep = Annotated[SqlOrderUnitOfWork, Depends(request_unit_of_work)]


def own_orders_only(principal: Principal) -> str | None:
    """The customer an API call is limited to (None: an admin sees everything)."""
    return None if principal.is_admin else principal.subject


def idempotent_request(
    key: str | None, principal: Principal, scope: str, body: Any
) -> IdempotentRequest | None:
    if key is None:
        return None
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return IdempotentRequest(
        principal=principal.subject,
        scope=scope,
        key=key,
        request_hash=hashlib.sha256(canonical.encode()).hexdigest(),
    )
