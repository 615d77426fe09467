"""Every refusal of the order service answers with one problem type, whatever route
raised it (one table, by the error's code)."""

from __future__ import annotations

from oms_order.api.problems import PROBLEMS
from oms_order.domain.errors import InvalidOrder, OrderNotModifiable


def test_every_error_the_order_service_raises_has_a_problem_type() -> None:
    assert PROBLEMS.unmapped() == []


def test_an_invalid_order_is_unprocessable_whether_placed_or_changed() -> None:
    kind = PROBLEMS.problem_for(InvalidOrder("at most 10000 of one SKU per order"))
    assert kind is not None and (kind.status, kind.slug) == (422, "invalid-order")


def test_an_order_that_cannot_change_now_is_a_conflict() -> None:
    kind = PROBLEMS.problem_for(OrderNotModifiable("the order shipped"))
    assert kind is not None and (kind.status, kind.slug) == (409, "order-not-modifiable")
