"""Why an order, a reservation, a payment or a shipment did not go the happy way.

These are the machine-readable reasons the public contract carries: an order's
`status_reason`, and the `reason` of the failure and refusal messages. Every service
names them from here, and the metrics take their label set from here, so a reason is
spelled one way everywhere. Free text still occurs where a person supplies the words
(a warehouse failing a shipment says why in its own words), and an operator's reason
(`requires_attention`) may add a detail after a colon (`void_failed: <gateway code>`).

Standard library only: the domain packages use it.
"""

from __future__ import annotations

from enum import StrEnum


class StatusReason(StrEnum):
    # Why an order was cancelled or rejected.
    CUSTOMER_REQUEST = "customer_request"
    PAYMENT_DECLINED = "payment_declined"
    PAYMENT_UNAVAILABLE = "payment_unavailable"
    OUT_OF_STOCK = "out_of_stock"
    UNKNOWN_SKU = "unknown_sku"
    CURRENCY_MISMATCH = "currency_mismatch"
    RESERVATION_TIMEOUT = "reservation_timeout"
    PAYMENT_TIMEOUT = "payment_timeout"
    SHIPMENT_TIMEOUT = "shipment_timeout"
    DISPATCH_TIMEOUT = "dispatch_timeout"
    RESERVATION_EXPIRED = "reservation_expired"
    DESTINATION_NOT_SERVED = "destination_not_served"
    # Why a service refused a request about an order.
    ORDER_CANCELLED = "order_cancelled"
    NOT_RESERVED = "not_reserved"
    NOT_REAUTHORIZABLE = "not_reauthorizable"
    ALREADY_DISPATCHED = "already_dispatched"
    # Why an order needs an operator (`requires_attention`).
    VOID_FAILED = "void_failed"
    CAPTURE_FAILED = "capture_failed"
    COMPENSATION_TIMEOUT = "compensation_timeout"
    SETTLEMENT_TIMEOUT = "settlement_timeout"
    ITEM_CHANGE_REVERT_FAILED = "item_change_revert_failed"

    def because(self, detail: str) -> str:
        """The reason with what caused it (`void_failed: card_expired`)."""
        return f"{self.value}: {detail}"


def known_or_other(reason: str | None) -> str:
    """A reason as a metric label: one of the enumeration, "" for none, or "other"
    (free text would make the label set unbounded)."""
    if not reason:
        return ""
    return reason if reason in _VALUES else "other"


_VALUES = frozenset(reason.value for reason in StatusReason)
