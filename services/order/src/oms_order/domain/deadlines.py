"""How long each saga step may take before the order stops waiting for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from oms_order.domain.model import Order, OrderStatus


@dataclass(frozen=True)
class SagaDeadlines:
    reservation: timedelta
    payment: timedelta
    shipment: timedelta
    dispatch: timedelta
    settlement: timedelta
    # First wait for a compensation (or settlement) reply; doubles per retry.
    retry: timedelta
    max_attempts: int

    def wait_for(self, order: Order) -> timedelta | None:
        """How long from now the order may wait in its current step (None: no limit)."""
        backoff = 1 << min(order.step_attempts, 10)
        match order.status:
            case OrderStatus.PENDING:
                return self.reservation
            case OrderStatus.AWAITING_PAYMENT:
                return self.payment
            case OrderStatus.PAID:
                return self.shipment
            case OrderStatus.FULFILLING | OrderStatus.PARTIALLY_SHIPPED:
                return self.dispatch
            case OrderStatus.SHIPPED:
                return None if order.is_settled else max(self.settlement, self.retry * backoff)
            case OrderStatus.CANCELLING:
                return self.retry * backoff
            case _:
                return None
