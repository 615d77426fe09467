"""Composition root of the order service."""

from __future__ import annotations

import functools
from datetime import timedelta

from fastapi import FastAPI

from oms_order.api.admin import router as admin_router
from oms_order.api.catalog import router as catalog_router
from oms_order.api.problems import PROBLEMS
from oms_order.api.returns import router as returns_router
from oms_order.api.routes import router
from oms_order.db.gauges import open_sagas
from oms_order.db.repository import load_orders_for_batch
from oms_order.db.tables import messaging
from oms_order.db.unit_of_work import SqlOrderUnitOfWork
from oms_order.handlers.outgoing import OrderEvents
from oms_order.handlers.saga import HANDLERS
from oms_order.settings import OrderSettings
from oms_order.workers.deadline_sweeper import DeadlineSweeper
from oms_order.workers.status_watcher import OrderStatusWatcher
from oms_runtime.bootstrap import ServiceContext, build_service
from oms_runtime.db import libpq_url
from oms_runtime.service import BackgroundWorker


def create_app(settings: OrderSettings | None = None) -> FastAPI:
    settings = settings or OrderSettings()
    status_watcher = OrderStatusWatcher(libpq_url(settings.database_url))

    def workers(
        context: ServiceContext[OrderSettings, SqlOrderUnitOfWork],
    ) -> list[BackgroundWorker]:
        sweeper = DeadlineSweeper(context.unit_of_work, settings.sweep_interval_seconds)
        return [sweeper, status_watcher]

    return build_service(
        name="order",
        title="OMS order gateway",
        description="Place, follow, change and cancel orders. Errors are application/problem+json.",
        settings=settings,
        tables=messaging,
        unit_of_work=functools.partial(
            SqlOrderUnitOfWork,
            deadlines=settings.saga_deadlines(),
            idempotency_ttl=timedelta(hours=settings.idempotency_key_ttl_hours),
            return_policy=settings.return_policy(),
        ),
        handlers=HANDLERS,
        events=OrderEvents(),
        problems=PROBLEMS,
        routers=[router, returns_router, admin_router, catalog_router],
        workers=workers,
        state=lambda _: {"status_watcher": status_watcher},
        gauge_collectors=[open_sagas],
        batch_loader=load_orders_for_batch,
    )
