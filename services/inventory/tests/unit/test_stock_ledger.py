"""Every change of stock is a movement in the ledger, and the ledger adds up."""

from __future__ import annotations

from oms_inventory.domain.model import MovementReason, Product, StockMovement, reserve


def mug() -> Product:
    return Product.create(sku="MUG", name="Mug", unit_price=500, currency="EUR", on_hand=10)


def sums(product: Product) -> tuple[int, int]:
    return (
        sum(m.on_hand_delta for m in product.movements),
        sum(m.reserved_delta for m in product.movements),
    )


def test_a_new_product_opens_its_ledger_with_the_initial_stock() -> None:
    product = mug()
    assert product.movements == [StockMovement("MUG", MovementReason.INITIAL, 10, 0)]


def test_each_change_is_a_movement_with_its_reason_and_order() -> None:
    product = mug()
    product.reserve(3, "o-1")
    product.ship(3, "o-1")
    product.reserve(2, "o-2")
    product.release(2, "o-2")
    product.restock(5, note="supplier delivery")
    product.update(on_hand=11)
    assert [
        (m.reason, m.on_hand_delta, m.reserved_delta, m.order_id) for m in product.movements[1:]
    ] == [
        (MovementReason.RESERVE, 0, 3, "o-1"),
        (MovementReason.SHIP, -3, -3, "o-1"),
        (MovementReason.RESERVE, 0, 2, "o-2"),
        (MovementReason.RELEASE, 0, -2, "o-2"),
        (MovementReason.RESTOCK, 5, 0, None),
        (MovementReason.ADJUSTMENT, -1, 0, None),
    ]
    assert sums(product) == (product.on_hand, product.reserved) == (11, 0)


def test_a_reservation_over_several_products_moves_each_of_them() -> None:
    products = {
        "MUG": mug(),
        "TEA": Product.create(sku="TEA", name="Tea", unit_price=300, currency="EUR", on_hand=4),
    }
    reserve("o-7", {"MUG": 2, "TEA": 4}, products)
    for product in products.values():
        assert product.movements[-1].reason is MovementReason.RESERVE
        assert product.movements[-1].order_id == "o-7"
        assert sums(product) == (product.on_hand, product.reserved)


def test_a_refused_reservation_moves_nothing() -> None:
    products = {"MUG": mug()}
    reserve("o-8", {"MUG": 11}, products)
    assert len(products["MUG"].movements) == 1


def test_an_unchanged_count_is_not_an_adjustment() -> None:
    product = mug()
    product.update(on_hand=10, name="Big mug")
    assert len(product.movements) == 1
