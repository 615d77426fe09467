"""`inventory.return_stock` on an in-memory unit of work: what a return does to the
stock at each location, what it answers, and that it books once per return."""

from __future__ import annotations

import pytest

from oms_contracts import inventory as msgs
from oms_contracts.common import OrderLine, ReturnCondition, ReturnedLine
from oms_inventory.domain.allocation import Location
from oms_inventory.domain.model import Product, StockLevel
from oms_inventory.handlers import messages
from oms_inventory.handlers.stock import ProductNotFound, UnknownLocation

from .fakes import FakeInventoryUnitOfWork

BERLIN = Location("BER", "DE", priority=1)
PARIS = Location("PAR", "FR", priority=2)
SITES = {"BER": BERLIN, "PAR": PARIS}


def stocked(sku: str, low_stock_threshold: int = 0, **at: int) -> Product:
    return Product(
        sku=sku,
        name=sku,
        unit_price=500,
        currency="EUR",
        low_stock_threshold=low_stock_threshold,
        levels={code: StockLevel(SITES[code], on_hand) for code, on_hand in at.items()},
    )


def unit_of_work(*products: Product) -> FakeInventoryUnitOfWork:
    return FakeInventoryUnitOfWork(list(products), locations=[BERLIN, PARIS])


def return_stock(
    *lines: tuple[str, int, str, ReturnCondition], return_id: str = "r-1", order_id: str = "o-1"
) -> msgs.ReturnStock:
    """Lines as (sku, quantity, location, condition)."""
    return msgs.ReturnStock(
        order_id=order_id,
        return_id=return_id,
        lines=[
            ReturnedLine(sku=sku, quantity=quantity, location=location, condition=condition)
            for sku, quantity, location, condition in lines
        ],
    )


async def test_resellable_units_go_back_on_hand_and_damaged_ones_are_counted_apart() -> None:
    mug = stocked("MUG", BER=5, PAR=5)
    uow = unit_of_work(mug)
    command = return_stock(("MUG", 2, "PAR", "resellable"), ("MUG", 1, "PAR", "damaged"))

    await messages.return_stock(command, uow)

    berlin, paris = mug.level("BER"), mug.level("PAR")
    assert (berlin.on_hand, berlin.damaged) == (5, 0)
    assert (paris.on_hand, paris.available, paris.damaged) == (7, 7, 1)
    [answer] = uow.sent
    assert answer == msgs.StockReturned(order_id="o-1", return_id="r-1", lines=command.lines)


async def test_the_same_return_again_books_nothing_more_and_answers_the_same_again() -> None:
    mug = stocked("MUG", BER=5)
    uow = unit_of_work(mug)
    command = return_stock(("MUG", 2, "BER", "resellable"), ("MUG", 1, "BER", "damaged"))

    await messages.return_stock(command, uow)
    # Re-sent (a new message), even with other lines: the first booking stands.
    await messages.return_stock(command, uow)
    await messages.return_stock(return_stock(("MUG", 9, "BER", "resellable")), uow)

    assert (mug.level("BER").on_hand, mug.level("BER").damaged) == (7, 1)
    first = msgs.StockReturned(order_id="o-1", return_id="r-1", lines=command.lines)
    assert uow.sent == [first, first, first]


async def test_two_returns_of_one_order_are_each_booked() -> None:
    mug = stocked("MUG", BER=5)
    uow = unit_of_work(mug)

    await messages.return_stock(return_stock(("MUG", 1, "BER", "resellable")), uow)
    await messages.return_stock(return_stock(("MUG", 2, "BER", "resellable"), return_id="r-2"), uow)

    assert [answer.return_id for answer in uow.sent if isinstance(answer, msgs.StockReturned)] == [
        "r-1",
        "r-2",
    ]
    assert (mug.level("BER").on_hand, len(uow.sent)) == (8, 2)


async def test_a_location_the_product_was_never_stocked_at_gets_a_stock_record() -> None:
    mug = stocked("MUG", BER=5)
    uow = unit_of_work(mug)

    await messages.return_stock(
        return_stock(("MUG", 3, "PAR", "resellable"), ("MUG", 1, "PAR", "damaged")), uow
    )

    paris = mug.level("PAR")
    assert (paris.on_hand, paris.reserved, paris.damaged) == (3, 0, 1)
    assert mug.level("BER").on_hand == 5


async def test_a_return_to_an_unknown_location_books_nothing_and_fails_for_the_dead_letters() -> (
    None
):
    mug = stocked("MUG", BER=5)
    uow = unit_of_work(mug)

    with pytest.raises(UnknownLocation):
        await messages.return_stock(
            return_stock(("MUG", 1, "BER", "resellable"), ("MUG", 1, "NOWHERE", "resellable")),
            uow,
        )

    assert (mug.on_hand, mug.damaged) == (5, 0)
    assert (uow.sent, uow.commits, uow.stock_returns.by_return) == ([], 0, {})


async def test_a_return_of_an_unknown_product_books_nothing_and_fails_for_the_dead_letters() -> (
    None
):
    mug = stocked("MUG", BER=5)
    uow = unit_of_work(mug)

    with pytest.raises(ProductNotFound):
        await messages.return_stock(
            return_stock(("MUG", 1, "BER", "resellable"), ("GHOST", 1, "BER", "resellable")),
            uow,
        )

    assert mug.on_hand == 5
    assert (uow.sent, uow.commits, uow.stock_returns.by_return) == ([], 0, {})


async def test_returned_stock_ends_a_low_stock_alert_so_the_next_crossing_alerts_again() -> None:
    mug = stocked("MUG", low_stock_threshold=3, BER=4)
    uow = unit_of_work(mug)
    lines = [OrderLine(sku="MUG", quantity=2)]
    await messages.reserve_stock(msgs.ReserveStock(order_id="o-9", lines=lines), uow)  # 2 left

    await messages.return_stock(return_stock(("MUG", 3, "BER", "resellable")), uow)  # 5 left
    assert not mug.level("BER").low_stock_alerted
    await messages.reserve_stock(msgs.ReserveStock(order_id="o-10", lines=lines), uow)  # 3 left

    alerts = [m for m in uow.sent if isinstance(m, msgs.LowStock)]
    assert [(alert.location, alert.available) for alert in alerts] == [("BER", 2), ("BER", 3)]
    # One replenishment request stays open for the location: a return is no delivery.
    assert list(uow.replenishments.open_for) == [("MUG", "BER")]
