"""Composition root of the order service."""

from __future__ import annotations

import functools

from fastapi import FastAPI

from oms_order.api.admin import router as admin_router
from oms_order.api.catalog import router as catalog_router
from oms_order.api.routes import router
from oms_order.db.tables import messaging
from oms_order.db.unit_of_work import OrderUnitOfWork
from oms_order.handlers.deadlines import DeadlineSweeper
from oms_order.handlers.saga import HANDLERS
from oms_order.settings import OrderSettings
from oms_runtime.bootstrap import ServiceContext, build_service
from oms_runtime.service import BackgroundWorker


def deadline_sweeper(
    context: ServiceContext[OrderSettings, OrderUnitOfWork],
) -> list[BackgroundWorker]:
    return [DeadlineSweeper(context.unit_of_work, context.settings.sweep_interval_seconds)]


def create_app(settings: OrderSettings | None = None) -> FastAPI:
    settings = settings or OrderSettings()
    return build_service(
        name="order",
        title="OMS order gateway",
        description="Place, follow and cancel orders. Errors are application/problem+json.",
        settings=settings,
        tables=messaging,
        unit_of_work=functools.partial(OrderUnitOfWork, deadlines=settings.saga_deadlines()),
        handlers=HANDLERS,
        routers=[router, admin_router, catalog_router],
        workers=deadline_sweeper,
    )
