"""Maps products and reservations to their tables, explicitly."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from oms_contracts import Envelope
from oms_inventory.db.tables import (
    products,
    replenishments,
    reservations,
    restock_receipts,
    stock_movements,
)
from oms_inventory.domain.model import Product, Reservation, ReservationStatus, ReservedLine
from oms_runtime.bulk import UPDATED_AT_NOW
from oms_runtime.messaging.unit_of_work import SharedTransaction, UnitOfWork

_STOCK_COLUMNS = ("on_hand", "reserved", "low_stock_alerted")
# Built once: stock changes with every reservation.
_SAVE_STOCK = (
    update(products)
    .where(products.c.sku == bindparam("b_sku"))
    .values(
        **{column: bindparam(f"b_{column}") for column in _STOCK_COLUMNS},
        updated_at=func.now(),
    )
)
# Locking in SKU order: two orders touching the same SKUs in different line orders
# then queue behind each other instead of deadlocking.
_GET_MANY = (
    select(products)
    .where(products.c.sku == any_(bindparam("b_skus", type_=ARRAY(Text))))
    .order_by(products.c.sku)
)
_GET_MANY_FOR_UPDATE = _GET_MANY.with_for_update()


_LOAD_RESERVATIONS = (
    select(reservations)
    .where(reservations.c.order_id == any_(bindparam("b_order_ids", type_=ARRAY(Text))))
    .order_by(reservations.c.order_id)
    .with_for_update()
)


@dataclass
class _BatchRows:
    """What a batch of messages reads, loaded (and locked) once for all of them, as
    its messages left it; None for a row that does not exist."""

    reservations: dict[str, dict[str, Any] | None]
    products: dict[str, dict[str, Any] | None]


_BATCH = "inventory.rows"


async def load_stock_for_batch(shared: SharedTransaction, envelopes: list[Envelope]) -> None:
    """Lock and read the reservations and products a batch of messages is about: the
    reservations of their orders (in order id order), then every product named in
    them or in the messages' lines (in SKU order, as every stock change locks).

    The batch's handlers then read these rows from memory and write their changes
    with the batch's commit, in one statement."""
    order_ids: set[str] = set()
    skus: set[str] = set()
    for envelope in envelopes:
        data = envelope.data
        if isinstance(data.get("order_id"), str):
            order_ids.add(data["order_id"])
        if isinstance(data.get("sku"), str):
            skus.add(data["sku"])
        for line in data.get("lines") or ():
            if isinstance(line, dict) and isinstance(line.get("sku"), str):
                skus.add(line["sku"])
    batch = _BatchRows({order_id: None for order_id in order_ids}, {})
    if order_ids:
        result = await shared.connection.execute(
            _LOAD_RESERVATIONS, {"b_order_ids": sorted(order_ids)}
        )
        for row in result.mappings():
            batch.reservations[row["order_id"]] = dict(row)
            skus.update(line["sku"] for line in row["lines"])
    if skus:
        result = await shared.connection.execute(_GET_MANY_FOR_UPDATE, {"b_skus": sorted(skus)})
        batch.products = {sku: None for sku in skus}
        for row in result.mappings():
            batch.products[row["sku"]] = dict(row)
    shared.state[_BATCH] = batch


def _batch_of(unit_of_work: UnitOfWork) -> _BatchRows | None:
    shared = unit_of_work.shared
    batch = shared.state.get(_BATCH) if shared is not None else None
    return batch if isinstance(batch, _BatchRows) else None


class ProductRepository:
    def __init__(self, connection: AsyncConnection, unit_of_work: UnitOfWork) -> None:
        self._connection = connection
        self._unit_of_work = unit_of_work
        self._batch = _batch_of(unit_of_work)

    async def add(self, product: Product) -> bool:
        """Insert; False if the SKU exists already."""
        result = await self._connection.execute(
            pg_insert(products)
            .values(**_product_row(product))
            .on_conflict_do_nothing(index_elements=["sku"])
            .returning(products.c.sku)
        )
        if result.first() is None:
            return False
        self._record_movements_on_commit([product])
        return True

    async def get(self, sku: str, *, for_update: bool = False) -> Product | None:
        found = await self.get_many([sku], for_update=for_update)
        return found.get(sku)

    async def get_many(
        self, skus: Iterable[str], *, for_update: bool = False
    ) -> dict[str, Product]:
        wanted = sorted(set(skus))
        batch = self._batch
        if batch is not None and for_update:
            missing = [sku for sku in wanted if sku not in batch.products]
            if missing:
                batch.products.update(dict.fromkeys(missing))
                found = await self._connection.execute(_GET_MANY_FOR_UPDATE, {"b_skus": missing})
                for row in found.mappings():
                    batch.products[row["sku"]] = dict(row)
            loaded = {sku: batch.products[sku] for sku in wanted}
            return {sku: _product(row) for sku, row in loaded.items() if row is not None}
        statement = _GET_MANY_FOR_UPDATE if for_update else _GET_MANY
        result = await self._connection.execute(statement, {"b_skus": wanted})
        return {row["sku"]: _product(row) for row in result.mappings()}

    async def save_stock(self, changed: list[Product]) -> None:
        self._record_movements_on_commit(changed)
        batch = self._batch
        if batch is not None and all(batch.products.get(p.sku) for p in changed):
            for product in changed:
                levels = {column: getattr(product, column) for column in _STOCK_COLUMNS}
                row = batch.products[product.sku]
                assert row is not None
                row.update(levels)
                self._unit_of_work.update_on_commit(
                    products, "sku", {"sku": product.sku, **levels}, computed=UPDATED_AT_NOW
                )
            return
        rows = [
            {"b_sku": p.sku, **{f"b_{column}": getattr(p, column) for column in _STOCK_COLUMNS}}
            for p in changed
        ]
        if rows:
            await self._connection.execute(_SAVE_STOCK, rows)
        for product in changed:
            # Written at once: later reads in the batch go to the table.
            if batch is not None:
                batch.products.pop(product.sku, None)

    async def needing_low_stock_review(self, limit: int) -> list[Product]:
        """Products whose low-stock flag disagrees with their stock (the periodic
        check; events normally keep them in step). Locked; other replicas skip them."""
        is_low = (products.c.on_hand - products.c.reserved <= products.c.low_stock_threshold) & (
            products.c.low_stock_threshold > 0
        )
        rows = await self._connection.execute(
            select(products)
            .where(is_low != products.c.low_stock_alerted)
            .order_by(products.c.sku)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_product(row) for row in rows.mappings()]

    async def save(self, product: Product) -> None:
        row = _product_row(product)
        del row["sku"]
        await self._connection.execute(
            update(products)
            .where(products.c.sku == product.sku)
            .values(**row, updated_at=func.now())
        )
        self._record_movements_on_commit([product])

    def _record_movements_on_commit(self, changed: list[Product]) -> None:
        # The ledger is append-only and never read back in the same transaction.
        self._unit_of_work.insert_on_commit(
            stock_movements,
            [
                {
                    "sku": m.sku,
                    "reason": m.reason.value,
                    "on_hand_delta": m.on_hand_delta,
                    "reserved_delta": m.reserved_delta,
                    "order_id": m.order_id,
                    "note": m.note,
                }
                for product in changed
                for m in product.movements
            ],
        )
        for product in changed:
            product.movements.clear()


_GET_RESERVATION = select(reservations).where(reservations.c.order_id == bindparam("b_order_id"))
_GET_RESERVATION_FOR_UPDATE = _GET_RESERVATION.with_for_update()
_ADD_RESERVATION = reservations.insert()
_SAVE_RESERVATION = (
    update(reservations)
    .where(reservations.c.order_id == bindparam("b_order_id"))
    .values(status=bindparam("b_status"), lines=bindparam("b_lines"), updated_at=func.now())
)


class ReservationRepository:
    def __init__(self, connection: AsyncConnection, unit_of_work: UnitOfWork) -> None:
        self._connection = connection
        self._unit_of_work = unit_of_work
        self._batch = _batch_of(unit_of_work)

    def _in_batch(self, order_id: str) -> bool:
        return self._batch is not None and order_id in self._batch.reservations

    async def get(self, order_id: str, *, for_update: bool = False) -> Reservation | None:
        if self._batch is not None and self._in_batch(order_id) and for_update:
            loaded = self._batch.reservations[order_id]
            return _reservation(loaded) if loaded is not None else None
        statement = _GET_RESERVATION_FOR_UPDATE if for_update else _GET_RESERVATION
        row = (
            (await self._connection.execute(statement, {"b_order_id": order_id})).mappings().first()
        )
        return _reservation(row) if row is not None else None

    async def expired(self, limit: int) -> list[Reservation]:
        """Reservations past their time limit, locked; other replicas skip them."""
        rows = await self._connection.execute(
            select(reservations)
            .where(reservations.c.status == ReservationStatus.RESERVED.value)
            .where(reservations.c.expires_at <= func.now())
            .order_by(reservations.c.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_reservation(row) for row in rows.mappings()]

    async def add(self, reservation: Reservation) -> None:
        row = {
            "order_id": reservation.order_id,
            "status": reservation.status.value,
            "lines": _lines_row(reservation),
            "currency": reservation.currency,
            "refusal_reason": reservation.refusal_reason,
            "refused_skus": list(reservation.refused_skus),
            "expires_at": reservation.expires_at,
        }
        if self._batch is not None and self._in_batch(reservation.order_id):
            self._batch.reservations[reservation.order_id] = dict(row)
            self._unit_of_work.insert_on_commit(reservations, [row])
            return
        await self._connection.execute(_ADD_RESERVATION, row)

    async def save(self, reservation: Reservation) -> None:
        """Its status and lines (the only things that change after it was made)."""
        if self._batch is not None and (row := self._batch.reservations.get(reservation.order_id)):
            changes = {"status": reservation.status.value, "lines": _lines_row(reservation)}
            row.update(changes)
            self._unit_of_work.update_on_commit(
                reservations,
                "order_id",
                {"order_id": reservation.order_id, **changes},
                computed=UPDATED_AT_NOW,
            )
            return
        await self._connection.execute(
            _SAVE_RESERVATION,
            {
                "b_order_id": reservation.order_id,
                "b_status": reservation.status.value,
                "b_lines": _lines_row(reservation),
            },
        )


def _lines_row(reservation: Reservation) -> list[dict[str, Any]]:
    return [
        {"sku": line.sku, "quantity": line.quantity, "unit_price": line.unit_price}
        for line in reservation.lines
    ]


def _reservation(row: Any) -> Reservation:
    return Reservation(
        order_id=row["order_id"],
        status=ReservationStatus(row["status"]),
        lines=[
            ReservedLine(line["sku"], line["quantity"], line["unit_price"]) for line in row["lines"]
        ],
        currency=row["currency"],
        refusal_reason=row["refusal_reason"],
        refused_skus=list(row["refused_skus"]),
        expires_at=row["expires_at"],
    )


class ReplenishmentRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def request(self, sku: str, quantity: int, available: int) -> bool:
        """Open a replenishment request; False if one is open already."""
        result = await self._connection.execute(
            pg_insert(replenishments)
            .values(sku=sku, quantity=quantity, available_at_request=available)
            .on_conflict_do_nothing(
                index_elements=["sku"], index_where=replenishments.c.status == "open"
            )
            .returning(replenishments.c.id)
        )
        return result.first() is not None

    async def fulfil(self, sku: str, reference: str | None) -> None:
        await self._connection.execute(
            update(replenishments)
            .where(replenishments.c.sku == sku, replenishments.c.status == "open")
            .values(status="fulfilled", fulfilled_at=func.now(), fulfilled_by=reference)
        )

    async def claim_receipt(self, sku: str, reference: str, quantity: int) -> bool:
        """Remember a delivery; False if this one was counted before."""
        result = await self._connection.execute(
            pg_insert(restock_receipts)
            .values(sku=sku, reference=reference, quantity=quantity)
            .on_conflict_do_nothing()
            .returning(restock_receipts.c.sku)
        )
        return result.first() is not None


def _product_row(product: Product) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "name": product.name,
        "unit_price": product.unit_price,
        "currency": product.currency,
        "on_hand": product.on_hand,
        "reserved": product.reserved,
        "low_stock_threshold": product.low_stock_threshold,
        "reorder_quantity": product.reorder_quantity,
        "low_stock_alerted": product.low_stock_alerted,
    }


def _product(row: Any) -> Product:
    return Product(
        sku=row["sku"],
        name=row["name"],
        unit_price=row["unit_price"],
        currency=row["currency"],
        on_hand=row["on_hand"],
        reserved=row["reserved"],
        low_stock_threshold=row["low_stock_threshold"],
        reorder_quantity=row["reorder_quantity"],
        low_stock_alerted=row["low_stock_alerted"],
    )
