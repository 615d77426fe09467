"""How each refusal of the inventory answers over HTTP: one table, by the error's
code, whatever route raised it."""

from __future__ import annotations

from oms_inventory.domain.model import (
    GoodsAlreadyShipped,
    InsufficientStock,
    InvalidQuantity,
    InventoryError,
    NothingReserved,
    NotStockedThere,
    OnHandBelowReserved,
    StockError,
)
from oms_inventory.handlers.products import LocationExists, ProductExists
from oms_inventory.handlers.stock import ProductNotFound, UnknownLocation
from oms_runtime.problems import ErrorProblems, ProblemType

_STOCK_CONFLICT = ProblemType(409, "stock-conflict", "Stock conflict")

PROBLEMS = ErrorProblems(
    errors=(InventoryError,),
    by_code={
        InventoryError.code: ProblemType(409, "inventory-conflict", "Not possible now"),
        ProductNotFound.code: ProblemType(404, "product-not-found", "Product not found"),
        ProductExists.code: ProblemType(409, "product-exists", "Product exists", field="sku"),
        LocationExists.code: ProblemType(409, "location-exists", "Location exists", field="code"),
        UnknownLocation.code: ProblemType(
            422, "unknown-location", "No such location", field="location"
        ),
        OnHandBelowReserved.code: ProblemType(
            409, "stock-conflict", "Stock conflict", field="on_hand"
        ),
        InvalidQuantity.code: ProblemType(
            422, "invalid-quantity", "The quantity is not valid", field="quantity"
        ),
        StockError.code: _STOCK_CONFLICT,
        InsufficientStock.code: _STOCK_CONFLICT,
        GoodsAlreadyShipped.code: _STOCK_CONFLICT,
        NothingReserved.code: _STOCK_CONFLICT,
        NotStockedThere.code: _STOCK_CONFLICT,
    },
)
