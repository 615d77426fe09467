"""Composition root of the inventory service."""

from __future__ import annotations

import functools
from datetime import timedelta

from fastapi import FastAPI

from oms_inventory.api.problems import PROBLEMS
from oms_inventory.api.routes import router
from oms_inventory.db.repository import load_stock_for_batch
from oms_inventory.db.tables import messaging
from oms_inventory.db.unit_of_work import SqlInventoryUnitOfWork
from oms_inventory.handlers.messages import HANDLERS
from oms_inventory.handlers.outgoing import InventoryEvents
from oms_inventory.settings import InventorySettings
from oms_inventory.workers.maintenance import InventoryMaintenance
from oms_runtime.bootstrap import ServiceContext, build_service
from oms_runtime.service import BackgroundWorker


def maintenance(
    context: ServiceContext[InventorySettings, SqlInventoryUnitOfWork],
) -> list[BackgroundWorker]:
    return [InventoryMaintenance(context.unit_of_work, context.settings.inventory_check_seconds)]


def create_app(settings: InventorySettings | None = None) -> FastAPI:
    settings = settings or InventorySettings()
    return build_service(
        name="inventory",
        title="OMS inventory",
        description="Products, stock levels, reservations, replenishment (admin API).",
        settings=settings,
        tables=messaging,
        unit_of_work=functools.partial(
            SqlInventoryUnitOfWork,
            reservation_ttl=timedelta(seconds=settings.reservation_ttl_seconds),
        ),
        handlers=HANDLERS,
        events=InventoryEvents(),
        problems=PROBLEMS,
        routers=[router],
        workers=maintenance,
        batch_loader=load_stock_for_batch,
    )
