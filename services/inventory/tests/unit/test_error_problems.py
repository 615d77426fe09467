"""Every refusal of the inventory answers with one problem type (by the error's code)."""

from __future__ import annotations

from oms_inventory.api.problems import PROBLEMS
from oms_inventory.domain.model import OnHandBelowReserved


def test_every_error_the_inventory_raises_has_a_problem_type() -> None:
    assert PROBLEMS.unmapped() == []


def test_a_count_below_what_is_reserved_is_a_conflict_naming_on_hand() -> None:
    kind = PROBLEMS.problem_for(OnHandBelowReserved("below the 3 units reserved"))
    assert kind is not None
    assert (kind.status, kind.slug, kind.field) == (409, "stock-conflict", "on_hand")
