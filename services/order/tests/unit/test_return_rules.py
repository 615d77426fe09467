"""What a customer may send back, and how a return moves (pure domain, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from oms_order.domain.returns import (
    Condition,
    ExceedsReturnable,
    InvalidReturn,
    OrderNotShipped,
    ReceivedUnits,
    RefundRequested,
    Return,
    ReturnCancelled,
    ReturnedStock,
    ReturnNotInState,
    ReturnRefunded,
    ReturnRequiresAttention,
    ReturnStatus,
    ReturnWindowClosed,
    ShippedUnits,
    validate_receipt,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
WINDOW = timedelta(days=30)
RECEIVE_WITHIN = timedelta(days=30)
REFUND_RETRY = timedelta(seconds=15)
ids = iter(f"ret-{n}" for n in range(1000))


def shipped(
    sku: str, quantity: int, *, location: str = "default", price: int = 1000, days_ago: int = 1
) -> ShippedUnits:
    return ShippedUnits(sku, location, quantity, price, NOW - timedelta(days=days_ago))


def request(
    items: dict[str, int],
    parcels: list[ShippedUnits],
    others: list[Return] = (),
    now: datetime = NOW,
) -> Return:
    return Return.request(
        return_id=next(ids),
        order_id="o-1",
        customer_id="alice",
        currency="EUR",
        items=items,
        reason="too small",
        shipped=parcels,
        other_returns=list(others),
        now=now,
        window=WINDOW,
    )


def approved(items: dict[str, int], parcels: list[ShippedUnits]) -> Return:
    ret = request(items, parcels)
    ret.approve("auto", NOW, RECEIVE_WITHIN)
    return ret


def received(ret: Return, *units: tuple[str, int, Condition]) -> Return:
    ret.record_received([ReceivedUnits(*u) for u in units], NOW, REFUND_RETRY)
    return ret


# -- what may be returned -------------------------------------------------------------


def test_a_customer_may_return_part_of_what_shipped() -> None:
    ret = request({"MUG": 1}, [shipped("MUG", 2), shipped("TEA", 1)])

    assert ret.status is ReturnStatus.REQUESTED
    assert ret.quantities() == {"MUG": 1}
    assert [(line.location, line.unit_price) for line in ret.lines] == [("default", 1000)]


def test_nothing_shipped_means_nothing_to_return() -> None:
    with pytest.raises(OrderNotShipped):
        request({"MUG": 1}, [])


def test_more_than_shipped_is_refused_naming_the_sku() -> None:
    with pytest.raises(ExceedsReturnable) as refused:
        request({"MUG": 3, "TEA": 1}, [shipped("MUG", 2), shipped("TEA", 1)])

    assert refused.value.skus == ("MUG",)


def test_a_sku_the_order_never_shipped_is_refused() -> None:
    with pytest.raises(ExceedsReturnable) as refused:
        request({"JAM": 1}, [shipped("MUG", 2)])

    assert refused.value.skus == ("JAM",)


def test_units_held_by_other_open_or_refunded_returns_cannot_be_returned_again() -> None:
    parcels = [shipped("MUG", 3)]
    first = request({"MUG": 2}, parcels)

    with pytest.raises(ExceedsReturnable):
        request({"MUG": 2}, parcels, [first])
    assert request({"MUG": 1}, parcels, [first]).quantities() == {"MUG": 1}


def test_cancelled_and_rejected_returns_free_their_units() -> None:
    parcels = [shipped("MUG", 2)]
    cancelled = request({"MUG": 2}, parcels)
    cancelled.cancel(NOW)
    rejected = request({"MUG": 2}, parcels)
    rejected.reject("worn", "ops", NOW)

    assert request({"MUG": 2}, parcels, [cancelled, rejected]).quantities() == {"MUG": 2}


def test_a_received_return_holds_what_arrived_not_what_it_announced() -> None:
    parcels = [shipped("MUG", 3)]
    first = received(approved({"MUG": 3}, parcels), ("MUG", 1, Condition.RESELLABLE))

    assert request({"MUG": 2}, parcels, [first]).quantities() == {"MUG": 2}
    with pytest.raises(ExceedsReturnable):
        request({"MUG": 3}, parcels, [first])


def test_units_shipped_longer_ago_than_the_window_are_refused_as_too_late() -> None:
    with pytest.raises(ReturnWindowClosed):
        request({"MUG": 1}, [shipped("MUG", 2, days_ago=31)])


def test_a_sku_shipped_in_two_parcels_returns_to_the_locations_it_left_from() -> None:
    parcels = [
        shipped("MUG", 2, location="BER", days_ago=3),
        shipped("MUG", 2, location="PAR", days_ago=1),
    ]

    ret = request({"MUG": 3}, parcels)

    assert sorted((line.location, line.quantity) for line in ret.lines) == [
        ("BER", 1),
        ("PAR", 2),
    ]


def test_only_the_late_parcel_being_left_makes_a_request_too_late() -> None:
    parcels = [
        shipped("MUG", 2, location="BER", days_ago=40),
        shipped("MUG", 1, location="PAR", days_ago=1),
    ]

    assert request({"MUG": 1}, parcels).lines[0].location == "PAR"
    with pytest.raises(ReturnWindowClosed):
        request({"MUG": 2}, parcels)


def test_a_return_without_lines_is_invalid() -> None:
    with pytest.raises(InvalidReturn):
        request({}, [shipped("MUG", 1)])


# -- how a return moves ----------------------------------------------------------------


def test_an_approved_return_waits_for_its_parcel_until_the_deadline() -> None:
    ret = approved({"MUG": 1}, [shipped("MUG", 1)])

    assert ret.status is ReturnStatus.APPROVED
    assert ret.deadline_at == NOW + RECEIVE_WITHIN


def test_only_a_requested_return_can_be_approved_or_rejected() -> None:
    ret = approved({"MUG": 1}, [shipped("MUG", 1)])

    with pytest.raises(ReturnNotInState):
        ret.approve("ops", NOW, RECEIVE_WITHIN)
    with pytest.raises(ReturnNotInState):
        ret.reject("no", "ops", NOW)


def test_receiving_refunds_what_arrived_at_the_order_price_whatever_its_condition() -> None:
    ret = approved({"MUG": 2, "TEA": 1}, [shipped("MUG", 2, price=1250), shipped("TEA", 1)])

    received(ret, ("MUG", 1, Condition.RESELLABLE), ("MUG", 1, Condition.DAMAGED))

    assert ret.status is ReturnStatus.RECEIVED
    assert ret.refund_amount == 2500
    assert [e for e in ret.events if isinstance(e, RefundRequested)][-1].amount == 2500
    assert ret.returned_stock() == [
        ReturnedStock("MUG", "default", 1, Condition.RESELLABLE),
        ReturnedStock("MUG", "default", 1, Condition.DAMAGED),
    ]


def test_a_receipt_delivered_twice_is_taken_in_once() -> None:
    ret = received(approved({"MUG": 2}, [shipped("MUG", 2)]), ("MUG", 1, Condition.RESELLABLE))
    refunds_before = sum(isinstance(e, RefundRequested) for e in ret.events)

    received(ret, ("MUG", 1, Condition.RESELLABLE))

    assert ret.refund_amount == 1000
    assert sum(isinstance(e, RefundRequested) for e in ret.events) == refunds_before


def test_a_refund_confirmation_makes_the_return_refunded() -> None:
    ret = received(approved({"MUG": 1}, [shipped("MUG", 1)]), ("MUG", 1, Condition.RESELLABLE))

    ret.record_refunded(1000, NOW)

    assert (ret.status, ret.refunded_amount, ret.deadline_at) == (ReturnStatus.REFUNDED, 1000, None)


def test_a_customer_may_cancel_before_the_parcel_is_received_but_not_after() -> None:
    before = approved({"MUG": 1}, [shipped("MUG", 1)])
    before.cancel(NOW)
    after = received(approved({"MUG": 1}, [shipped("MUG", 1)]), ("MUG", 1, Condition.DAMAGED))

    assert before.status is ReturnStatus.CANCELLED
    assert before.events[-1] == ReturnCancelled(before.id, "o-1", "customer_request", True)
    with pytest.raises(ReturnNotInState):
        after.cancel(NOW)


def test_goods_received_after_the_cancellation_crossed_them_are_still_refunded() -> None:
    ret = approved({"MUG": 1}, [shipped("MUG", 1)])
    ret.cancel(NOW)

    received(ret, ("MUG", 1, Condition.RESELLABLE))

    assert ret.status is ReturnStatus.RECEIVED
    assert ret.refund_amount == 1000


def test_an_approved_return_whose_parcel_never_arrives_expires_without_refund() -> None:
    ret = approved({"MUG": 1}, [shipped("MUG", 1)])

    ret.deadline_passed(NOW + RECEIVE_WITHIN, REFUND_RETRY, max_attempts=5)

    assert (ret.status, ret.status_reason) == (ReturnStatus.CANCELLED, "return_not_received")
    assert not any(isinstance(e, RefundRequested) for e in ret.events)


def test_a_refused_refund_needs_an_operator_who_can_retry_with_a_new_attempt() -> None:
    ret = received(approved({"MUG": 1}, [shipped("MUG", 1)]), ("MUG", 1, Condition.RESELLABLE))

    ret.record_refund_failed("HTTP 402 refund_refused", NOW)
    assert ret.status is ReturnStatus.REQUIRES_ATTENTION
    assert isinstance(ret.events[-1], ReturnRequiresAttention)

    ret.retry("ops", NOW, REFUND_RETRY)
    assert ret.status is ReturnStatus.RECEIVED
    assert ret.events[-1] == RefundRequested(ret.id, "o-1", 1000, attempt=1)


def test_an_unanswered_refund_is_asked_again_with_the_same_attempt_then_needs_attention() -> None:
    ret = received(approved({"MUG": 1}, [shipped("MUG", 1)]), ("MUG", 1, Condition.RESELLABLE))

    ret.deadline_passed(NOW, REFUND_RETRY, max_attempts=2)
    assert ret.events[-1] == RefundRequested(ret.id, "o-1", 1000, attempt=0)

    ret.refund_attempt = 1
    ret.deadline_passed(NOW, REFUND_RETRY, max_attempts=2)
    assert (ret.status, ret.status_reason) == (ReturnStatus.REQUIRES_ATTENTION, "refund_timeout")


def test_an_operator_who_refunded_by_hand_forces_the_return_to_refunded() -> None:
    ret = received(approved({"MUG": 1}, [shipped("MUG", 1)]), ("MUG", 1, Condition.RESELLABLE))
    ret.record_refund_failed("refused", NOW)

    ret.force("ops", NOW)

    assert ret.status is ReturnStatus.REFUNDED
    assert ret.events[-1] == ReturnRefunded(ret.id, "o-1", 1000)


def test_the_warehouse_may_receive_less_but_not_more_or_other_skus() -> None:
    announced = {"MUG": 2}

    validate_receipt(announced, [ReceivedUnits("MUG", 1, Condition.DAMAGED)])
    with pytest.raises(InvalidReturn):
        validate_receipt(announced, [ReceivedUnits("MUG", 3, Condition.DAMAGED)])
    with pytest.raises(InvalidReturn):
        validate_receipt(announced, [ReceivedUnits("TEA", 1, Condition.DAMAGED)])
    with pytest.raises(InvalidReturn):
        validate_receipt(announced, [ReceivedUnits("MUG", 0, Condition.DAMAGED)])
