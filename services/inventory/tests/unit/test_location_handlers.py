"""The inventory's handlers with stock at several locations, on an in-memory unit of
work: what each command does at which location, and what it answers."""

from __future__ import annotations

import logging

import pytest

from oms_contracts import inventory as msgs
from oms_contracts.common import OrderLine
from oms_inventory.domain.allocation import Location
from oms_inventory.domain.model import Product, StockLevel
from oms_inventory.handlers import messages, stock
from oms_inventory.handlers import products as use_cases
from oms_inventory.handlers.stock import UnknownLocation

from .fakes import FakeInventoryUnitOfWork

BERLIN = Location("BER", "DE", priority=1, serves=frozenset({"DE", "AT"}))
PARIS = Location("PAR", "FR", priority=2)
SITES = {"BER": BERLIN, "PAR": PARIS}


def stocked(sku: str, **at: int) -> Product:
    return Product(
        sku=sku,
        name=sku,
        unit_price=500,
        currency="EUR",
        low_stock_threshold=2,
        reorder_quantity=10,
        levels={code: StockLevel(SITES[code], on_hand) for code, on_hand in at.items()},
    )


def unit_of_work(*products: Product) -> FakeInventoryUnitOfWork:
    return FakeInventoryUnitOfWork(list(products), locations=[BERLIN, PARIS])


def reserve_stock(country: str | None, order_id: str = "o-1", **lines: int) -> msgs.ReserveStock:
    return msgs.ReserveStock(
        order_id=order_id,
        lines=[OrderLine(sku=sku, quantity=q) for sku, q in lines.items()],
        country=country,
    )


async def test_a_split_reservation_answers_with_a_parcel_per_location_and_what_it_serves() -> None:
    mug = stocked("MUG", BER=25, PAR=25)
    uow = unit_of_work(mug)

    await messages.reserve_stock(reserve_stock("DE", MUG=30), uow)

    [answer] = [m for m in uow.sent if isinstance(m, msgs.StockReserved)]
    assert [(line.sku, line.quantity, line.unit_price) for line in answer.lines] == [
        ("MUG", 30, 500)
    ]
    assert [
        (a.location, [(line.sku, line.quantity) for line in a.lines], a.serves)
        for a in answer.allocations
    ] == [("BER", [("MUG", 25)], ["AT", "DE"]), ("PAR", [("MUG", 5)], None)]


async def test_a_reservation_no_serving_location_can_fill_is_refused_out_of_stock() -> None:
    mug = stocked("MUG", BER=5)
    uow = unit_of_work(mug)

    await messages.reserve_stock(reserve_stock("FR", MUG=1), uow)

    answer = uow.sent[-1]
    assert isinstance(answer, msgs.StockReservationFailed)
    assert (answer.reason, answer.skus) == ("out_of_stock", ["MUG"])
    assert mug.reserved == 0


async def test_committing_one_parcel_answers_its_lines_location_and_fulfillment() -> None:
    mug = stocked("MUG", BER=25, PAR=25)
    uow = unit_of_work(mug)
    await messages.reserve_stock(reserve_stock("DE", MUG=30), uow)

    await messages.commit_stock(
        msgs.CommitStock(order_id="o-1", location="PAR", fulfillment_id="o-1/PAR"), uow
    )

    answer = uow.sent[-1]
    assert isinstance(answer, msgs.StockCommitted)
    assert (answer.location, answer.fulfillment_id) == ("PAR", "o-1/PAR")
    assert [(line.sku, line.quantity) for line in answer.lines] == [("MUG", 5)]
    assert (mug.level("BER").on_hand, mug.level("PAR").on_hand) == (25, 20)


async def test_a_release_after_one_parcel_left_gives_back_the_rest_and_confirms() -> None:
    mug = stocked("MUG", BER=25, PAR=25)
    uow = unit_of_work(mug)
    await messages.reserve_stock(reserve_stock("DE", MUG=30), uow)
    await messages.commit_stock(msgs.CommitStock(order_id="o-1", location="BER"), uow)

    await messages.release_stock(msgs.ReleaseStock(order_id="o-1", reason="x"), uow)

    assert uow.sent_types()[-1] == "inventory.stock_released"
    assert (mug.level("BER").on_hand, mug.level("PAR").reserved) == (0, 0)
    assert mug.reserved == 0


async def test_a_commit_for_a_location_without_the_orders_goods_answers_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    uow = unit_of_work(stocked("MUG", BER=5, PAR=5))
    await messages.reserve_stock(reserve_stock("DE", MUG=2), uow)
    sent = len(uow.sent)

    with caplog.at_level(logging.ERROR):
        await messages.commit_stock(msgs.CommitStock(order_id="o-1", location="PAR"), uow)

    assert len(uow.sent) == sent
    assert "nothing reserved to ship" in caplog.text


async def test_changed_items_are_answered_with_the_new_allocation() -> None:
    mug = stocked("MUG", BER=3, PAR=9)
    uow = unit_of_work(mug)
    await messages.reserve_stock(reserve_stock("DE", MUG=2), uow)

    await messages.adjust_reservation(
        msgs.AdjustReservation(
            order_id="o-1", lines=[OrderLine(sku="MUG", quantity=8)], country="DE"
        ),
        uow,
    )

    [answer] = [m for m in uow.sent if isinstance(m, msgs.ReservationAdjusted)]
    assert [(a.location, a.lines[0].quantity) for a in answer.allocations] == [("PAR", 8)]
    assert (mug.level("BER").reserved, mug.level("PAR").reserved) == (0, 8)


async def test_low_stock_at_a_location_requests_replenishment_for_that_location() -> None:
    mug = stocked("MUG", BER=5, PAR=5)
    uow = unit_of_work(mug)

    await messages.reserve_stock(reserve_stock("DE", MUG=4), uow)

    [alert] = [m for m in uow.sent if isinstance(m, msgs.LowStock)]
    [request] = [m for m in uow.sent if isinstance(m, msgs.ReplenishmentRequested)]
    assert (alert.location, alert.available) == ("BER", 1)
    assert (request.location, request.quantity) == ("BER", 10)
    assert list(uow.replenishments.open_for) == [("MUG", "BER")]


async def test_a_delivery_to_a_new_location_stocks_the_product_there() -> None:
    mug = stocked("MUG", BER=5)
    uow = unit_of_work(mug)

    await messages.restock(
        msgs.Restock(sku="MUG", quantity=12, reference="DN-9", location="PAR"), uow
    )

    assert (mug.level("BER").on_hand, mug.level("PAR").on_hand) == (5, 12)
    [restocked] = [m for m in uow.sent if isinstance(m, msgs.Restocked)]
    assert (restocked.location, restocked.on_hand) == ("PAR", 12)


async def test_the_same_delivery_note_counts_once_per_location() -> None:
    mug = stocked("MUG", BER=5, PAR=5)
    uow = unit_of_work(mug)

    for location in ("BER", "BER", "PAR"):
        await stock.receive_stock("MUG", 10, "DN-1", uow, location)

    assert (mug.level("BER").on_hand, mug.level("PAR").on_hand) == (15, 15)


async def test_a_delivery_to_an_unknown_location_changes_nothing_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mug = stocked("MUG", BER=5)
    uow = unit_of_work(mug)

    with caplog.at_level(logging.ERROR):
        await messages.restock(
            msgs.Restock(sku="MUG", quantity=3, reference="DN-2", location="NOWHERE"), uow
        )

    assert mug.on_hand == 5
    assert uow.sent == []
    assert "unknown SKU or location" in caplog.text


async def test_a_product_stocked_at_an_unknown_location_is_refused_naming_it() -> None:
    uow = unit_of_work()

    with pytest.raises(UnknownLocation) as refused:
        await use_cases.create_product(
            use_cases.NewProduct("MUG", "Mug", 500, "EUR", {"BER": 1, "LIS": 2, "OSL": 3}), uow
        )

    assert refused.value.codes == ("LIS", "OSL")
    assert uow.products.by_sku == {}


async def test_a_count_at_a_location_corrects_that_location_only() -> None:
    mug = stocked("MUG", BER=5, PAR=5)
    uow = unit_of_work(mug)

    await use_cases.update_product("MUG", use_cases.ProductChanges(on_hand=7), uow, "PAR")

    assert (mug.level("BER").on_hand, mug.level("PAR").on_hand) == (5, 7)
