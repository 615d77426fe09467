"""Everything that can go wrong after an order is placed: failing shipments,
deadlines, compensations that fail, and what an operator can do about them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from oms_order.domain import events
from oms_order.domain.deadlines import SagaDeadlines
from oms_order.domain.errors import OrderNotCancellable, OrderNotInAttention
from oms_order.domain.model import Compensation, Order, OrderStatus

from .orders import awaiting_payment, fulfilling, paid, placed, shipped

MAX_ATTEMPTS = 3
DEADLINES = SagaDeadlines(
    reservation=timedelta(seconds=30),
    payment=timedelta(seconds=60),
    shipment=timedelta(seconds=60),
    dispatch=timedelta(hours=72),
    settlement=timedelta(seconds=120),
    retry=timedelta(seconds=10),
    max_attempts=MAX_ATTEMPTS,
)


def cancelling_with_void_and_release() -> Order:
    order = awaiting_payment()
    order.cancel()
    order.events.clear()
    return order


def kinds(order: Order) -> list[type]:
    return [type(event) for event in order.events]


# -- shipments that fail ----------------------------------------------------------


def test_a_shipment_that_cannot_be_made_voids_the_payment_and_releases_the_stock() -> None:
    order = fulfilling()
    order.record_shipment_failed("destination_not_served")
    assert order.status is OrderStatus.CANCELLING
    assert order.status_reason == "destination_not_served"
    assert order.pending_compensations == {Compensation.VOID_PAYMENT, Compensation.RELEASE_STOCK}
    order.record_payment_voided()
    order.record_stock_released()
    assert order.status is OrderStatus.CANCELLED


def test_a_parcel_lost_after_dispatch_refunds_the_payment_but_does_not_restock() -> None:
    order = shipped()
    order.record_stock_committed()
    order.record_payment_captured(1000)
    order.record_shipment_failed("lost_in_transit")
    assert order.status is OrderStatus.CANCELLING
    assert order.pending_compensations == {Compensation.VOID_PAYMENT}
    order.record_payment_voided()  # the payment service refunds a captured payment
    assert order.status is OrderStatus.CANCELLED
    assert order.status_reason == "lost_in_transit"


# -- deadlines --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "reason", "first_undo"),
    [
        (placed, "reservation_timeout", {Compensation.RELEASE_STOCK}),
        (
            awaiting_payment,
            "payment_timeout",
            {Compensation.RELEASE_STOCK, Compensation.VOID_PAYMENT},
        ),
        (fulfilling, "dispatch_timeout", {Compensation.CANCEL_SHIPMENT}),
    ],
)
def test_a_step_past_its_deadline_starts_compensation_with_a_clear_reason(
    make: object, reason: str, first_undo: set[Compensation]
) -> None:
    order = make()  # type: ignore[operator]
    order.deadline_passed(MAX_ATTEMPTS)
    assert order.status is OrderStatus.CANCELLING
    assert order.status_reason == reason
    assert order.pending_compensations == first_undo


def test_an_unanswered_compensation_is_resent_with_growing_waits() -> None:
    order = cancelling_with_void_and_release()
    order.arm_deadline(datetime(2026, 1, 1, tzinfo=UTC), DEADLINES.wait_for(order))
    first_wait = DEADLINES.wait_for(order)
    order.deadline_passed(MAX_ATTEMPTS)
    assert order.status is OrderStatus.CANCELLING
    assert order.step_attempts == 1
    assert order.step_changed
    assert order.events == [
        events.CompensationRequested(
            "o-1", "customer_request", release_stock=True, void_payment=True
        )
    ]
    second_wait = DEADLINES.wait_for(order)
    assert first_wait is not None and second_wait == first_wait * 2


def test_a_compensation_that_never_answers_ends_in_requires_attention_listing_it() -> None:
    order = cancelling_with_void_and_release()
    order.record_stock_released()
    for _ in range(MAX_ATTEMPTS):
        order.deadline_passed(MAX_ATTEMPTS)
    assert order.status is OrderStatus.REQUIRES_ATTENTION
    assert order.status_reason == "compensation_timeout"
    assert order.events[-1] == events.OrderRequiresAttention(
        "o-1", "compensation_timeout", ("void_payment",)
    )
    assert DEADLINES.wait_for(order) is None
    assert not order.is_terminal


def test_a_confirmation_that_arrives_late_still_finishes_the_cancellation() -> None:
    order = cancelling_with_void_and_release()
    order.record_void_failed("void_refused")
    assert order.status is OrderStatus.REQUIRES_ATTENTION
    order.record_payment_voided()
    order.record_stock_released()
    assert order.status is OrderStatus.CANCELLED
    assert order.status_reason == "customer_request"


def test_a_refused_void_parks_the_order_for_an_operator_who_can_retry_it() -> None:
    order = cancelling_with_void_and_release()
    order.record_stock_released()
    order.record_void_failed("void_refused")
    assert (order.status, order.status_reason) == (
        OrderStatus.REQUIRES_ATTENTION,
        "void_failed: void_refused",
    )
    order.events.clear()
    order.retry("ops")
    assert order.status is OrderStatus.CANCELLING
    assert order.status_reason == "customer_request"
    assert kinds(order) == [events.OperatorRetried, events.CompensationRequested]
    assert order.events[-1] == events.CompensationRequested(
        "o-1", "customer_request", void_payment=True
    )


def test_an_operator_can_force_a_stuck_compensation_through() -> None:
    order = cancelling_with_void_and_release()
    order.record_stock_released()
    order.record_void_failed("void_refused")
    order.force_compensation("ops")
    assert order.status is OrderStatus.CANCELLED
    assert order.status_reason == "customer_request"
    assert events.CompensationForced("o-1", "ops", ("void_payment",)) in order.events


@pytest.mark.parametrize("action", ["retry", "force_compensation"])
def test_operators_can_only_act_on_orders_that_require_attention(action: str) -> None:
    with pytest.raises(OrderNotInAttention):
        getattr(fulfilling(), action)("ops")


# -- settlement of shipped orders --------------------------------------------------


def test_a_capture_the_gateway_never_answered_is_asked_again_by_the_deadline_not_an_operator() -> (
    None
):
    order = shipped()
    order.record_stock_committed()

    order.record_capture_failed("gateway_unavailable", retryable=True)
    assert order.status is OrderStatus.SHIPPED
    order.events.clear()
    order.deadline_passed(MAX_ATTEMPTS)

    assert order.events == [
        events.SettlementRequested(
            "o-1", (events.ParcelSettlement("o-1", "default", 1000, False, True),)
        )
    ]


def test_a_void_the_gateway_never_answered_is_asked_again_by_the_deadline() -> None:
    order = paid()
    order.cancel()
    order.record_shipment_cancelled()

    order.record_void_failed("gateway_unavailable", retryable=True)

    assert order.status is OrderStatus.CANCELLING
    assert Compensation.VOID_PAYMENT in order.pending_compensations


def test_a_refused_capture_parks_the_shipped_order_until_the_capture_succeeds() -> None:
    order = shipped()
    order.record_stock_committed()
    order.record_capture_failed("capture_refused")
    assert order.status is OrderStatus.REQUIRES_ATTENTION
    with pytest.raises(OrderNotCancellable):
        order.cancel()
    order.record_delivery("ship-1", "simpost", "SIM1")
    order.retry("ops")
    assert order.status is OrderStatus.SHIPPED
    assert order.events[-1] == events.SettlementRequested(
        "o-1", (events.ParcelSettlement("o-1", "default", 1000, False, True),)
    )
    order.record_payment_captured(1000)
    assert order.status is OrderStatus.COMPLETED


def test_an_unsettled_shipment_is_asked_again_then_flagged() -> None:
    order = shipped()
    order.deadline_passed(MAX_ATTEMPTS)
    assert order.events == [
        events.SettlementRequested(
            "o-1", (events.ParcelSettlement("o-1", "default", 1000, True, True),)
        )
    ]
    order.deadline_passed(MAX_ATTEMPTS)
    order.deadline_passed(MAX_ATTEMPTS)
    assert order.status is OrderStatus.REQUIRES_ATTENTION
    assert order.status_reason == "settlement_timeout"
    assert order.events[-1] == events.OrderRequiresAttention(
        "o-1", "settlement_timeout", ("commit_stock", "capture_payment")
    )


def test_a_settled_shipped_order_has_no_deadline() -> None:
    order = shipped()
    assert DEADLINES.wait_for(order) == DEADLINES.settlement
    order.record_stock_committed()
    order.record_payment_captured(1000)
    assert DEADLINES.wait_for(order) is None
    order.deadline_passed(MAX_ATTEMPTS)
    assert order.status is OrderStatus.SHIPPED


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (placed, DEADLINES.reservation),
        (awaiting_payment, DEADLINES.payment),
        (fulfilling, DEADLINES.dispatch),
    ],
)
def test_each_waiting_step_has_its_own_deadline(make: object, expected: timedelta) -> None:
    order = make()  # type: ignore[operator]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    order.arm_deadline(now, DEADLINES.wait_for(order))
    assert order.deadline_at == now + expected
    assert not order.step_changed


def test_terminal_orders_have_no_deadline() -> None:
    order = placed()
    order.record_stock_unavailable("out_of_stock", ["A"])
    assert DEADLINES.wait_for(order) is None


def test_an_expired_reservation_cancels_an_order_still_waiting_for_the_warehouse() -> None:
    order = fulfilling()
    order.record_reservation_expired()
    assert (order.status, order.status_reason) == (OrderStatus.CANCELLING, "reservation_expired")
    assert order.pending_compensations == {Compensation.CANCEL_SHIPMENT}
    assert order.deferred_compensations == {Compensation.VOID_PAYMENT, Compensation.RELEASE_STOCK}


def test_an_expired_reservation_of_a_shipped_order_is_ignored() -> None:
    order = shipped()
    order.record_reservation_expired()
    assert order.status is OrderStatus.SHIPPED
    assert [type(e) for e in order.events] == [events.ReplyIgnored]
