"""Which actions an order page offers, given the order's state and the staff role.
The services decide in the end (a 409 is shown as it comes); this keeps the page
from offering what cannot apply."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oms_console.domain.roles import Permission, Role, may

CANCELLABLE = frozenset({"pending", "awaiting_payment", "paid", "fulfilling"})
DISPATCHABLE = frozenset({"created"})
REFUNDABLE = frozenset({"captured", "partially_refunded"})


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
