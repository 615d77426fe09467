"""Every refusal of the shipping service answers with one problem type (by the
error's code)."""

from __future__ import annotations

from oms_shipping.api.problems import PROBLEMS


def test_every_error_the_shipping_service_raises_has_a_problem_type() -> None:
    assert PROBLEMS.unmapped() == []
