"""What the order API's routes are given."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from oms_order.db.unit_of_work import SqlOrderUnitOfWork
from oms_runtime.http import request_unit_of_work

UnitOfWorkDep = Annotated[SqlOrderUnitOfWork, Depends(request_unit_of_work)]
