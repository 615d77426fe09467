"""The inventory's reservation handlers on an in-memory unit of work: what each
command does to the stock, and what it answers."""

from __future__ import annotations

from oms_contracts import inventory as msgs
from oms_contracts.common import OrderLine
from oms_inventory.domain.model import (
    DEFAULT,
    Product,
    Replenishment,
    Reservation,
    ReservationStatus,
    StockLevel,
    release_nothing,
    reserve,
)
from oms_inventory.handlers import messages, stock

from .fakes import FakeInventoryUnitOfWork


def product(sku: str, on_hand: int, **settings: int) -> Product:
    return Product(
        sku=sku,
        name=sku,
        unit_price=500,
        currency="EUR",
        levels={"default": StockLevel(DEFAULT, on_hand)},
        **settings,
    )


def reserved(order_id: str, products: list[Product], **lines: int) -> Reservation:
    reservation = reserve(order_id, lines, {p.sku: p for p in products})
    for p in products:
        p.events.clear()
        p.movements.clear()
    return reservation


def reserve_stock(order_id: str = "o-1", **lines: int) -> msgs.ReserveStock:
    return msgs.ReserveStock(
        order_id=order_id, lines=[OrderLine(sku=sku, quantity=q) for sku, q in lines.items()]
    )


async def test_a_reservation_that_fits_holds_the_stock_and_answers_with_the_prices() -> None:
    mug = product("MUG", on_hand=10)
    uow = FakeInventoryUnitOfWork([mug])

    await messages.reserve_stock(reserve_stock(MUG=3), uow)

    assert (mug.available, mug.reserved) == (7, 3)
    assert uow.sent_types() == ["inventory.stock_reserved"]
    answer = uow.sent[0]
    assert isinstance(answer, msgs.StockReserved)
    assert [(line.sku, line.quantity, line.unit_price) for line in answer.lines] == [
        ("MUG", 3, 500)
    ]
    assert uow.reservations.by_order["o-1"].status is ReservationStatus.RESERVED


async def test_a_reservation_that_does_not_fit_is_refused_naming_the_short_sku() -> None:
    mug, tea = product("MUG", on_hand=10), product("TEA", on_hand=1)
    uow = FakeInventoryUnitOfWork([mug, tea])

    await messages.reserve_stock(reserve_stock(MUG=3, TEA=2), uow)

    assert (mug.reserved, tea.reserved) == (0, 0)
    answer = uow.sent[0]
    assert isinstance(answer, msgs.StockReservationFailed)
    assert (answer.reason, answer.skus) == ("out_of_stock", ["TEA"])


async def test_a_repeated_reservation_request_gets_the_first_answer_and_reserves_nothing_more() -> (
    None
):
    mug = product("MUG", on_hand=10)
    uow = FakeInventoryUnitOfWork([mug])
    await messages.reserve_stock(reserve_stock(MUG=3), uow)

    await messages.reserve_stock(reserve_stock(MUG=3), uow)

    assert mug.reserved == 3
    assert uow.sent_types() == ["inventory.stock_reserved", "inventory.stock_reserved"]


async def test_a_release_gives_the_stock_back_and_confirms_it() -> None:
    mug = product("MUG", on_hand=10)
    uow = FakeInventoryUnitOfWork([mug], [reserved("o-1", [mug], MUG=4)])

    await messages.release_stock(msgs.ReleaseStock(order_id="o-1", reason="x"), uow)

    assert mug.available == 10
    assert uow.sent_types() == ["inventory.stock_released"]


async def test_a_release_that_overtakes_the_reservation_makes_the_late_request_fail() -> None:
    mug = product("MUG", on_hand=10)
    uow = FakeInventoryUnitOfWork([mug])
    await messages.release_stock(msgs.ReleaseStock(order_id="o-1", reason="x"), uow)

    await messages.reserve_stock(reserve_stock(MUG=3), uow)

    assert mug.reserved == 0
    late = uow.sent[-1]
    assert isinstance(late, msgs.StockReservationFailed)
    assert late.reason == "order_cancelled"
    assert uow.reservations.by_order["o-1"] == release_nothing("o-1")


async def test_a_release_after_the_goods_shipped_is_refused_and_answers_nothing() -> None:
    mug = product("MUG", on_hand=10)
    shipped = reserved("o-1", [mug], MUG=2)
    shipped.commit({"MUG": mug})
    uow = FakeInventoryUnitOfWork([mug], [shipped])

    await messages.release_stock(msgs.ReleaseStock(order_id="o-1", reason="x"), uow)

    assert (mug.on_hand, mug.reserved) == (8, 0)
    assert uow.sent == []
    assert uow.commits == 1  # the inbox remembers it


async def test_committing_ships_the_goods_and_confirms_the_lines_even_when_asked_twice() -> None:
    mug = product("MUG", on_hand=10)
    uow = FakeInventoryUnitOfWork([mug], [reserved("o-1", [mug], MUG=2)])

    await messages.commit_stock(msgs.CommitStock(order_id="o-1"), uow)
    await messages.commit_stock(msgs.CommitStock(order_id="o-1"), uow)

    assert (mug.on_hand, mug.reserved) == (8, 0)
    assert uow.sent_types() == ["inventory.stock_committed", "inventory.stock_committed"]


async def test_committing_for_an_order_with_nothing_reserved_answers_nothing() -> None:
    uow = FakeInventoryUnitOfWork([product("MUG", on_hand=10)])

    await messages.commit_stock(msgs.CommitStock(order_id="o-9"), uow)

    assert uow.sent == []
    assert "o-9" not in uow.reservations.by_order


async def test_new_items_without_a_reservation_are_refused_as_not_reserved() -> None:
    uow = FakeInventoryUnitOfWork([product("MUG", on_hand=10)])

    await messages.adjust_reservation(
        msgs.AdjustReservation(order_id="o-9", lines=[OrderLine(sku="MUG", quantity=1)]), uow
    )

    refusal = uow.sent[0]
    assert isinstance(refusal, msgs.ReservationAdjustmentFailed)
    assert refusal.reason == "not_reserved"
    assert "o-9" not in uow.reservations.by_order


async def test_more_of_an_item_reserves_the_difference_keeping_the_price_held() -> None:
    mug = product("MUG", on_hand=10)
    held = reserved("o-1", [mug], MUG=2)
    mug.unit_price = 900
    uow = FakeInventoryUnitOfWork([mug], [held])

    await messages.adjust_reservation(
        msgs.AdjustReservation(order_id="o-1", lines=[OrderLine(sku="MUG", quantity=5)]), uow
    )

    assert mug.reserved == 5
    adjusted = uow.sent[0]
    assert isinstance(adjusted, msgs.ReservationAdjusted)
    assert [(line.quantity, line.unit_price) for line in adjusted.lines] == [(5, 500)]


async def test_reserving_down_to_the_threshold_asks_for_a_replenishment_once() -> None:
    mug = product("MUG", on_hand=10, low_stock_threshold=5, reorder_quantity=40)
    uow = FakeInventoryUnitOfWork([mug])

    await messages.reserve_stock(reserve_stock("o-1", MUG=6), uow)
    mug.release(6, "o-1")  # stock recovers, the alert re-arms, no delivery yet
    await messages.reserve_stock(reserve_stock("o-2", MUG=6), uow)

    sent = uow.sent_types()
    assert (sent.count("inventory.stock_reserved"), sent.count("inventory.low_stock")) == (2, 2)
    [request] = [m for m in uow.sent if isinstance(m, msgs.ReplenishmentRequested)]
    assert (request.sku, request.quantity) == ("MUG", 40)


async def test_a_delivery_restocks_once_per_reference_and_closes_the_replenishment() -> None:
    mug = product("MUG", on_hand=1, low_stock_threshold=5)
    uow = FakeInventoryUnitOfWork([mug])
    uow.replenishments.open_for["MUG", "default"] = Replenishment("MUG", 5, 1)

    await stock.receive_stock("MUG", 20, "delivery-1", uow)
    await stock.receive_stock("MUG", 20, "delivery-1", uow)

    assert mug.on_hand == 21
    assert ("MUG", "default") not in uow.replenishments.open_for
    assert uow.sent_types()[-1] == "inventory.restocked"
    assert uow.sent_types().count("inventory.restocked") == 1


async def test_an_expired_reservation_gives_the_stock_back_and_tells_the_saga() -> None:
    mug = product("MUG", on_hand=10)
    uow = FakeInventoryUnitOfWork([mug], [reserved("o-1", [mug], MUG=4)])

    expired = await stock.expire_reservations(uow)

    assert expired == 1
    assert mug.available == 10
    assert uow.sent_types() == ["inventory.reservation_expired"]
    assert uow.reservations.by_order["o-1"].status is ReservationStatus.EXPIRED
