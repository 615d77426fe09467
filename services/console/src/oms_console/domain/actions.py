"""Which actions an order page offers, given the order's state and the staff role.
The services decide in the end (a 409 is shown as it comes); this keeps the page
from offering what cannot apply."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oms_console.domain.roles import Permission, Role, may

# A partially shipped order may be cancelled too: the parcels still in their
# warehouses are stopped, what left stays shipped.
CANCELLABLE = frozenset({"pending", "awaiting_payment", "paid", "fulfilling", "partially_shipped"})
DISPATCHABLE = frozenset({"created"})
# Money captured for the parcels that left may be refunded before the rest is.
REFUNDABLE = frozenset({"partially_captured", "captured", "partially_refunded"})


@dataclass(frozen=True)
class OrderActions:
    cancel: bool
    retry: bool
    force: bool
    dispatch: frozenset[str]  # shipment ids
    refund: frozenset[str]  # payment ids

    @property
    def on_the_order(self) -> bool:
        """Cancel, retry or force: the actions on the order as a whole."""
        return self.cancel or self.retry or self.force


def refundable_amount(payment: Mapping[str, Any]) -> int:
    return int(payment.get("captured_amount") or 0) - int(payment.get("refunded_amount") or 0)


def order_actions(
    role: Role,
    order: Mapping[str, Any],
    shipments: Sequence[Mapping[str, Any]],
    payments: Sequence[Mapping[str, Any]],
) -> OrderActions:
    status = order.get("status")
    attention = status == "requires_attention"
    return OrderActions(
        cancel=status in CANCELLABLE and may(role, Permission.CANCEL_ORDER),
        retry=attention and may(role, Permission.RETRY),
        force=attention and may(role, Permission.FORCE),
        dispatch=frozenset(
            str(s["id"])
            for s in shipments
            if s.get("status") in DISPATCHABLE and may(role, Permission.DISPATCH)
        ),
        refund=frozenset(
            str(p["id"])
            for p in payments
            if p.get("status") in REFUNDABLE
            and refundable_amount(p) > 0
            and may(role, Permission.REFUND)
        ),
    )


REVIEWABLE_RETURNS = frozenset({"requested"})
# A return whose label is out waits for its parcel at the warehouse.
RECEIVABLE_RETURNS = frozenset({"approved"})


@dataclass(frozen=True)
class ReturnActions:
    approve: bool
    reject: bool
    retry: bool
    force: bool
    receive: bool

    @property
    def any(self) -> bool:
        return self.approve or self.reject or self.retry or self.force or self.receive


def return_actions(role: Role, found: Mapping[str, Any]) -> ReturnActions:
    status = found.get("status")
    review = status in REVIEWABLE_RETURNS and may(role, Permission.REVIEW_RETURNS)
    attention = status == "requires_attention"
    return ReturnActions(
        approve=review,
        reject=review,
        retry=attention and may(role, Permission.RETRY),
        force=attention and may(role, Permission.FORCE),
        receive=status in RECEIVABLE_RETURNS
        and bool(found.get("return_tracking_number"))
        and may(role, Permission.RECEIVE_RETURNS),
    )
