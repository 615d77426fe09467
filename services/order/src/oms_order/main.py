"""Composition root of the order service."""

from __future__ import annotations

from fastapi import FastAPI

from oms_order.api.routes import router
from oms_order.db.tables import messaging
from oms_order.db.unit_of_work import OrderUnitOfWork
from oms_order.handlers.saga import HANDLERS
from oms_order.settings import OrderSettings
from oms_runtime.bootstrap import build_service


def create_app(settings: OrderSettings | None = None) -> FastAPI:
    return build_service(
        name="order",
        title="OMS order gateway",
        description="Place, follow and cancel orders. Errors are application/problem+json.",
        settings=settings or OrderSettings(),
        tables=messaging,
        unit_of_work=OrderUnitOfWork,
        handlers=HANDLERS,
        routers=[router],
    )
