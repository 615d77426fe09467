from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from oms_order.domain.deadlines import SagaDeadlines
from oms_order.domain.returns import ReturnPolicy
from oms_runtime.settings import ServiceSettings


class OrderSettings(ServiceSettings):
    port: int = Field(8000, validation_alias="OMS_ORDER_PORT")
    # How long each saga step may take (seconds). A step past its deadline is
    # compensated; a compensation past its deadline is re-sent with doubling waits
    # and, after `deadline_max_attempts`, the order goes to requires_attention.
    # The payment deadline must outlast the payment service's own gateway retries.
    deadline_reservation_seconds: float = 30
    deadline_payment_seconds: float = 90
    deadline_shipment_seconds: float = 60
    deadline_dispatch_seconds: float = 72 * 3600
    deadline_settlement_seconds: float = 120
    deadline_retry_seconds: float = 15
    deadline_max_attempts: int = 5
    # How often the sweeper looks for overdue sagas.
    sweep_interval_seconds: float = 1.0
    # How long an Idempotency-Key is remembered.
    idempotency_key_ttl_hours: float = 24
    # The longest `Prefer: wait=N` honoured.
    max_wait_seconds: float = 30
    # Returns: accepted this long after a parcel shipped; approved at once unless
    # staff decide; an approved return whose parcel has not arrived after
    # `return_receive_days` is called off (nothing refunded). An unanswered refund
    # is asked again like a saga step (deadline_retry_seconds, deadline_max_attempts).
    return_window_days: float = 30
    return_auto_approve: bool = True
    return_receive_days: float = 30

    def return_policy(self) -> ReturnPolicy:
        return ReturnPolicy(
            window=timedelta(days=self.return_window_days),
            auto_approve=self.return_auto_approve,
            receive_within=timedelta(days=self.return_receive_days),
            refund_retry=timedelta(seconds=self.deadline_retry_seconds),
            max_attempts=self.deadline_max_attempts,
        )

    def saga_deadlines(self) -> SagaDeadlines:
        return SagaDeadlines(
            reservation=timedelta(seconds=self.deadline_reservation_seconds),
            payment=timedelta(seconds=self.deadline_payment_seconds),
            shipment=timedelta(seconds=self.deadline_shipment_seconds),
            dispatch=timedelta(seconds=self.deadline_dispatch_seconds),
            settlement=timedelta(seconds=self.deadline_settlement_seconds),
            retry=timedelta(seconds=self.deadline_retry_seconds),
            max_attempts=self.deadline_max_attempts,
        )
