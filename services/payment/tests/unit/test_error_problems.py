"""Every refusal of the payment service answers with one problem type (by the error's
code)."""

from __future__ import annotations

from oms_payment.api.problems import PROBLEMS
from oms_payment.domain.model import PaymentError


def _kinds(error: type[Exception]) -> list[type[Exception]]:
    return [error, *(kind for sub in error.__subclasses__() for kind in _kinds(sub))]


def test_every_error_the_payment_service_raises_has_a_problem_type() -> None:
    unmapped = [kind.__name__ for kind in _kinds(PaymentError) if kind.code not in PROBLEMS.by_code]
    assert unmapped == []
