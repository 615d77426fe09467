"""Every refusal of the shipping service answers with one problem type (by the
error's code)."""

from __future__ import annotations

from oms_shipping.api.problems import PROBLEMS
from oms_shipping.domain.model import ShippingError


def _kinds(error: type[Exception]) -> list[type[Exception]]:
    return [error, *(kind for sub in error.__subclasses__() for kind in _kinds(sub))]


def test_every_error_the_shipping_service_raises_has_a_problem_type() -> None:
    unmapped = [
        kind.__name__ for kind in _kinds(ShippingError) if kind.code not in PROBLEMS.by_code
    ]
    assert unmapped == []
