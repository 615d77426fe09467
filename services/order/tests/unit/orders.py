"""Orders at each step of the happy path, for the unit tests (events cleared)."""

from __future__ import annotations

from datetime import UTC, datetime

from oms_order.domain.model import Address, Order, OrderLine

HOME = Address("Ada", "1 Main St", "Berlin", "10115", "DE")


def placed() -> Order:
    order = Order.place(
        order_id="o-1",
        customer_id="alice",
        lines=[OrderLine("A", 2)],
        shipping_address=HOME,
        payment_token="tok_ok",
        now=datetime(2026, 11, 25, tzinfo=UTC),
    )
    order.events.clear()
    return order


def awaiting_payment() -> Order:
    order = placed()
    order.record_stock_reserved({"A": 500}, "EUR")
    order.events.clear()
    return order


def paid() -> Order:
    order = awaiting_payment()
    order.record_payment_authorized("pay-1")
    order.events.clear()
    return order


def fulfilling() -> Order:
    order = paid()
    order.record_shipment_created("ship-1")
    order.events.clear()
    return order


def shipped() -> Order:
    order = fulfilling()
    order.record_shipment_dispatched("ship-1", "simpost", "SIM1")
    order.events.clear()
    return order
