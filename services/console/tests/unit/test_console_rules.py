"""The console's plain rules: lockout, roles, money as staff type it, which actions
an order page offers, and the charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from oms_console.domain.actions import order_actions
from oms_console.domain.charts import bar_chart, line_chart
from oms_console.domain.lockout import LockoutPolicy, assess
from oms_console.domain.money import format_money, parse_amount
from oms_console.domain.roles import Permission, Role, may

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = LockoutPolicy(
    window=timedelta(minutes=15),
    throttle_base=timedelta(seconds=1),
    throttle_max=timedelta(seconds=30),
    lockout_threshold=5,
    lockout=timedelta(minutes=15),
    address_limit=20,
)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def test_no_failures_let_a_sign_in_through() -> None:
    assert assess(POLICY, [], 0, NOW).allowed


def test_each_failure_doubles_the_wait_before_the_next_attempt() -> None:
    assert not assess(POLICY, [ago(0.5)], 1, NOW).allowed
    assert assess(POLICY, [ago(1.5)], 1, NOW).allowed
    three = [ago(10), ago(9), ago(3)]
    verdict = assess(POLICY, three, 3, NOW)
    assert not verdict.allowed and verdict.reason == "throttled"
    assert verdict.retry_after == timedelta(seconds=1)  # 4 s after the last, 3 s gone


def test_the_wait_is_capped() -> None:
    policy = LockoutPolicy(**{**POLICY.__dict__, "lockout_threshold": 100})
    many = [ago(60 + i) for i in range(20)]
    assert assess(policy, many, 0, NOW).allowed  # 30 s cap, 60 s since the last


def test_the_threshold_locks_the_account_for_the_lockout_time() -> None:
    five = [ago(100 + i) for i in range(5)]
    verdict = assess(POLICY, five, 5, NOW)
    assert not verdict.allowed and verdict.reason == "locked"
    assert verdict.retry_after == timedelta(minutes=15) - timedelta(seconds=100)


def test_failures_older_than_the_window_are_forgotten() -> None:
    old = [ago(16 * 60 + i) for i in range(10)]
    assert assess(POLICY, old, 0, NOW).allowed


def test_an_address_with_too_many_failures_is_blocked_whatever_the_account() -> None:
    verdict = assess(POLICY, [], 20, NOW)
    assert not verdict.allowed and verdict.reason == "address"


def test_support_may_not_refund_or_force_but_may_cancel() -> None:
    assert may(Role.SUPPORT, Permission.CANCEL_ORDER)
    assert may(Role.SUPPORT, Permission.REVIEW_RETURNS)
    assert may(Role.SUPPORT, Permission.VIEW_ATTENTION)
    assert not may(Role.SUPPORT, Permission.REFUND)
    assert not may(Role.SUPPORT, Permission.FORCE)
    assert not may(Role.SUPPORT, Permission.DEAD_LETTERS)


def test_warehouse_dispatches_and_restocks_but_sees_no_orders() -> None:
    for permission in (
        Permission.VIEW_WAREHOUSE,
        Permission.DISPATCH,
        Permission.VIEW_STOCK,
        Permission.RESTOCK,
        Permission.RECEIVE_RETURNS,
    ):
        assert may(Role.WAREHOUSE, permission)
    assert not may(Role.WAREHOUSE, Permission.VIEW_ORDERS)
    assert not may(Role.WAREHOUSE, Permission.REFUND)


def test_admin_may_do_everything() -> None:
    assert all(may(Role.ADMIN, permission) for permission in Permission)


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [
        ("12.50", "EUR", 1250),
        ("12,5", "EUR", 1250),
        ("3", "EUR", 300),
        ("500", "JPY", 500),
        ("1.234", "KWD", 1234),
    ],
)
def test_amounts_are_typed_in_major_units(typed: str, currency: str, minor: int) -> None:
    assert parse_amount(typed, currency) == minor


@pytest.mark.parametrize("typed", ["", "abc", "0", "-1", "1.001", "NaN", "inf"])
def test_an_amount_that_is_not_one_is_refused_with_a_reason(typed: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        parse_amount(typed, "EUR")


def test_money_is_shown_with_its_currency() -> None:
    assert format_money(123456, "EUR") == "1,234.56 EUR"
    assert format_money(500, "JPY") == "500 JPY"
    assert format_money(None, "EUR") == "-"


ORDER = {"id": "o-1", "status": "fulfilling"}
PARCEL = {"id": "s-1", "status": "created"}
CAPTURED = {"id": "p-1", "status": "captured", "captured_amount": 2500, "refunded_amount": 0}


def test_an_order_waiting_for_dispatch_offers_cancel_and_dispatch_but_no_refund() -> None:
    actions = order_actions(Role.ADMIN, ORDER, [PARCEL], [{**CAPTURED, "status": "authorized"}])
    assert actions.cancel and actions.dispatch == {"s-1"}
    assert not actions.refund and not actions.retry and not actions.force


def test_a_captured_payment_offers_a_refund_to_admin_only() -> None:
    shipped = {**ORDER, "status": "shipped"}
    assert order_actions(Role.ADMIN, shipped, [], [CAPTURED]).refund == {"p-1"}
    assert not order_actions(Role.SUPPORT, shipped, [], [CAPTURED]).refund
    refunded = {**CAPTURED, "refunded_amount": 2500, "status": "refunded"}
    assert not order_actions(Role.ADMIN, shipped, [], [refunded]).refund


def test_an_order_needing_attention_offers_retry_and_force_to_admin_not_support() -> None:
    stuck = {**ORDER, "status": "requires_attention"}
    admin = order_actions(Role.ADMIN, stuck, [], [])
    assert admin.retry and admin.force and not admin.cancel
    support = order_actions(Role.SUPPORT, stuck, [], [])
    assert not support.retry and not support.force and not support.on_the_order


def test_charts_escape_their_labels_and_mark_values_over_the_scale() -> None:
    svg = bar_chart("<b>", [("<script>", 150.0), ("idle", None)], scale_max=100, marker=70)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'class="bar over"' in svg
    assert "n/a" in svg
    assert 'role="img"' in svg and "<title>&lt;b&gt;</title>" in svg


def test_a_line_chart_leaves_gaps_where_a_sample_is_missing() -> None:
    svg = line_chart("queue", [("observed", [1.0, 2.0, None, 3.0, 4.0])])
    assert svg.count("<polyline") == 2
    assert "observed: 4" in svg
