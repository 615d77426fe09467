"""One valid instance of a few representative messages, for the contract tests."""

from __future__ import annotations

from datetime import UTC, datetime

from oms_contracts import Message
from oms_contracts.common import OrderLine, PricedLine, ShippingAddress
from oms_contracts.inventory import StockReserved
from oms_contracts.order import OrderCreated, OrderRejected
from oms_contracts.payment import PaymentAuthorizationFailed
from oms_contracts.shipping import ShipmentDelivered

ADDRESS = ShippingAddress(
    name="Ada Lovelace", line1="1 Main St", city="Berlin", postal_code="10115", country="DE"
)
SAMPLES: list[Message] = [
    OrderCreated(
        order_id="order-1",
        customer_id="cust-1",
        lines=[OrderLine(sku="MUG", quantity=2)],
        shipping_address=ADDRESS,
        created_at=datetime(2025, 3, 1, 9, 30, tzinfo=UTC),
    ),
    StockReserved(
        order_id="order-1",
        lines=[PricedLine(sku="MUG", quantity=2, unit_price=1250)],
        currency="EUR",
    ),
    PaymentAuthorizationFailed(
        order_id="order-1", payment_id="pay-1", reason="payment_declined", decline_code=None
    ),
    ShipmentDelivered(
        order_id="order-1",
        shipment_id="shp-1",
        carrier="DHL",
        tracking_number="TRK-1",
        delivered_at=datetime(2025, 3, 3, 14, 0, tzinfo=UTC),
    ),
    OrderRejected(order_id="order-1", reason="out_of_stock"),
]
