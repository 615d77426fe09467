"""Every refusal of the payment service answers with one problem type (by the error's
code)."""

from __future__ import annotations

from oms_payment.api.problems import PROBLEMS


def test_every_error_the_payment_service_raises_has_a_problem_type() -> None:
    assert PROBLEMS.unmapped() == []
