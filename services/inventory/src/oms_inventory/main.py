"""Composition root of the inventory service."""

from __future__ import annotations

import functools
from datetime import timedelta

from fastapi import FastAPI

from oms_inventory.api.routes import router
from oms_inventory.db.repository import load_stock_for_batch
from oms_inventory.db.tables import messaging
from oms_inventory.db.unit_of_work import InventoryUnitOfWork
from oms_inventory.handlers.maintenance import InventoryMaintenance
from oms_inventory.handlers.messages import HANDLERS
from oms_inventory.settings import InventorySettings
from oms_runtime.bootstrap import ServiceContext, build_service
from oms_runtime.service import BackgroundWorker


def maintenance(
    context: ServiceContext[InventorySettings, InventoryUnitOfWork],
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
            InventoryUnitOfWork,
            reservation_ttl=timedelta(seconds=settings.reservation_ttl_seconds),
        ),
        handlers=HANDLERS,
        routers=[router],
        workers=maintenance,
        batch_loader=load_stock_for_batch,
    )
