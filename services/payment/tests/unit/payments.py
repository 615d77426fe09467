"""Payments in the states the unit tests start from, with nothing left to look at:
no operation asked of the gateway yet, no event recorded."""

from __future__ import annotations

from oms_payment.domain.model import Operation, Payment

GATEWAY_ID = "auth-1"


def pending(amount: int = 1000) -> Payment:
    """Started: its authorization is the one operation asked for."""
    return Payment.start(
        payment_id="pay-1", order_id="o-1", amount=amount, currency="EUR", token="tok_ok"
    )


def settled(payment: Payment) -> Payment:
    payment.operations.clear()
    payment.events.clear()
    return payment


def authorized(amount: int = 1000) -> Payment:
    payment = pending(amount)
    payment.authorization_approved(GATEWAY_ID)
    return settled(payment)


def captured(amount: int = 1000, *, of: int | None = None, parcel: str | None = None) -> Payment:
    """`amount` captured of an authorization of `of` (all of it by default); for
    `parcel` when given, else as the single capture of an order in one parcel."""
    payment = authorized(of or amount)
    if parcel is None:
        payment.request_capture()
        payment.capture_succeeded(amount)
    else:
        payment.request_capture(amount, parcel)
        payment.capture_succeeded(amount, parcel)
    return settled(payment)


def take_operations(payment: Payment) -> list[Operation]:
    """What the payment asked the gateway for since the last look."""
    taken = list(payment.operations)
    payment.operations.clear()
    return taken
