"""Composition root of the inventory service."""

from __future__ import annotations

from fastapi import FastAPI

from oms_inventory.api.routes import router
from oms_inventory.db.tables import messaging
from oms_inventory.db.unit_of_work import InventoryUnitOfWork
from oms_inventory.handlers.messages import HANDLERS
from oms_inventory.settings import InventorySettings
from oms_runtime.bootstrap import build_service


def create_app(settings: InventorySettings | None = None) -> FastAPI:
    return build_service(
        name="inventory",
        title="OMS inventory",
        description="Products, stock levels and reservations (admin API).",
        settings=settings or InventorySettings(),
        tables=messaging,
        unit_of_work=InventoryUnitOfWork,
        handlers=HANDLERS,
        routers=[router],
    )
