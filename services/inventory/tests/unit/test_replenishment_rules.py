"""How much a low-stock alert asks to order in, and what a delivery announces."""

from __future__ import annotations

from oms_inventory.domain.model import (
    DEFAULT,
    LowStockDetected,
    Product,
    Replenishment,
    ReplenishmentRequested,
    Restocked,
    StockLevel,
)


def mug(**settings: int) -> Product:
    return Product(
        sku="MUG",
        name="Mug",
        unit_price=500,
        currency="EUR",
        levels={"default": StockLevel(DEFAULT, on_hand=10)},
        **settings,
    )


def test_a_product_with_a_reorder_quantity_asks_for_that_quantity() -> None:
    product = mug(low_stock_threshold=5, reorder_quantity=40)

    product.reserve(6, "o-1")

    assert product.events == [LowStockDetected("MUG", 4, 5, 40)]


def test_a_product_without_a_reorder_quantity_asks_for_its_threshold() -> None:
    product = mug(low_stock_threshold=5)

    product.reserve(6, "o-1")

    assert product.events == [LowStockDetected("MUG", 4, 5, 5)]


def test_a_replenishment_opened_for_low_stock_asks_for_the_quantity_to_reorder() -> None:
    replenishment = Replenishment.for_low_stock(LowStockDetected("MUG", 4, 5, 40))

    assert (replenishment.quantity, replenishment.available_at_request) == (40, 4)
    assert replenishment.events == [ReplenishmentRequested("MUG", 40)]


def test_a_delivery_restocks_and_announces_the_new_stock_with_its_reference() -> None:
    product = mug()

    product.receive_delivery(15, "delivery-7")

    assert product.on_hand == 25
    assert product.events == [Restocked("MUG", 15, 25, "delivery-7")]
