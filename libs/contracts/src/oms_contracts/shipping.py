"""Commands the shipping service accepts and the events it publishes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from oms_contracts.common import OrderLine, ShippingAddress
from oms_contracts.envelope import Command, Event


class CreateShipment(Command):
    """Create the dispatch note for a paid order."""

    routing_key = "shipping.create_shipment"
    order_id: str
    lines: Annotated[list[OrderLine], Field(min_length=1)]
    shipping_address: ShippingAddress


class ShipmentCreated(Event):
    routing_key = "shipping.shipment_created"
    order_id: str
    shipment_id: str


class ShipmentDispatched(Event):
    routing_key = "shipping.shipment_dispatched"
    order_id: str
    shipment_id: str
    carrier: str
    tracking_number: str


class ShipmentDelivered(Event):
    routing_key = "shipping.delivered"
    order_id: str
    shipment_id: str
    carrier: str
    tracking_number: str
    delivered_at: datetime
