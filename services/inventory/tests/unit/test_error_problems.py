"""Every refusal of the inventory answers with one problem type (by the error's code)."""

from __future__ import annotations

from oms_inventory.api.problems import PROBLEMS
from oms_inventory.domain.model import InventoryError, OnHandBelowReserved


def _kinds(error: type[Exception]) -> list[type[Exception]]:
    return [error, *(kind for sub in error.__subclasses__() for kind in _kinds(sub))]


def test_every_error_the_inventory_raises_has_a_problem_type() -> None:
    unmapped = [
        kind.__name__ for kind in _kinds(InventoryError) if kind.code not in PROBLEMS.by_code
    ]
    assert unmapped == []


def test_a_count_below_what_is_reserved_is_a_conflict_naming_on_hand() -> None:
    kind = PROBLEMS.problem_for(OnHandBelowReserved("below the 3 units reserved"))
    assert kind is not None
    assert (kind.status, kind.slug, kind.field) == (409, "stock-conflict", "on_hand")
