"""Composition root of the shipping service."""

from __future__ import annotations

from fastapi import FastAPI

from oms_runtime.bootstrap import build_service
from oms_shipping.api.problems import PROBLEMS
from oms_shipping.api.returns import router as returns_router
from oms_shipping.api.routes import router
from oms_shipping.db.repository import load_shipments_for_batch
from oms_shipping.db.tables import messaging
from oms_shipping.db.unit_of_work import SqlShippingUnitOfWork
from oms_shipping.handlers.messages import handlers
from oms_shipping.handlers.outgoing import ShipmentEvents
from oms_shipping.settings import ShippingSettings


def create_app(settings: ShippingSettings | None = None) -> FastAPI:
    settings = settings or ShippingSettings()
    return build_service(
        name="shipping",
        title="OMS shipping",
        description="Dispatch notes, tracking numbers, the carrier webhook, and return parcels.",
        settings=settings,
        tables=messaging,
        unit_of_work=SqlShippingUnitOfWork,
        handlers=handlers(settings),
        batch_loader=load_shipments_for_batch,
        events=ShipmentEvents(),
        problems=PROBLEMS,
        routers=[router, returns_router],
    )
