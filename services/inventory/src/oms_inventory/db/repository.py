"""Maps products, reservations and replenishment requests to their tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from oms_contracts import Envelope
from oms_inventory.db.tables import (
    products,
    replenishments,
    reservations,
    restock_receipts,
    stock_movements,
)
from oms_inventory.domain.model import (
    Product,
    Replenishment,
    Reservation,
    ReservationStatus,
    ReservedLine,
)
from oms_runtime.messaging.unit_of_work import SharedTransaction
from oms_runtime.repository import Repository, Row


async def load_stock_for_batch(shared: SharedTransaction, envelopes: list[Envelope]) -> None:
    """Lock and read the reservations and products a batch of messages is about: the
    reservations of their orders (in order id order), then every product named in
    them or in the messages' lines (in SKU order, as every stock change locks).

    The batch's handlers then find these rows in memory and write their changes
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
    for row in await ReservationRepository.preload(shared, order_ids):
        skus.update(line["sku"] for line in row["lines"])
    await ProductRepository.preload(shared, skus)


_STOCK_COLUMNS = frozenset({"on_hand", "reserved", "low_stock_alerted"})
_ADD = pg_insert(products).on_conflict_do_nothing(index_elements=["sku"]).returning(products.c.sku)


class ProductRepository(Repository[Product]):
    table = products
    key = "sku"

    async def add(self, product: Product) -> bool:
        """Insert at once; False if the SKU exists already."""
        row = _product_row(product)
        if (await self._connection.execute(_ADD, row)).first() is None:
            return False
        self._adopt(product, row)
        return True

    async def get(self, sku: str, *, for_update: bool = False) -> Product | None:
        return await self._get(sku, for_update=for_update)

    async def get_many(
        self, skus: Iterable[str], *, for_update: bool = False
    ) -> dict[str, Product]:
        """Locked in SKU order: two orders touching the same SKUs in different line
        orders then queue behind each other instead of deadlocking."""
        return await self._get_many(skus, for_update=for_update)

    async def needing_low_stock_review(self, limit: int) -> list[Product]:
        """Products whose low-stock flag disagrees with their stock (the periodic
        check; events normally keep them in step). Locked; other replicas skip them."""
        is_low = (products.c.on_hand - products.c.reserved <= products.c.low_stock_threshold) & (
            products.c.low_stock_threshold > 0
        )
        return await self._find(
            select(products)
            .where(is_low != products.c.low_stock_alerted)
            .order_by(products.c.sku)
            .limit(limit)
            .with_for_update(skip_locked=True),
            locked=True,
        )

    def _key_of(self, product: Product) -> str:
        return product.sku

    def _to_row(self, product: Product) -> Row:
        return _product_row(product)

    def _from_row(self, row: Mapping[str, Any]) -> Product:
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

    def _update_of(self, product: Product, row: Row, changed: set[str]) -> Row:
        # Stock moves with every reservation; the rest only when staff edit it.
        if changed <= _STOCK_COLUMNS:
            return {name: row[name] for name in ("sku", *sorted(_STOCK_COLUMNS))}
        return row

    async def _write_along(self, product: Product) -> None:
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
                for m in product.movements
            ],
        )
        product.movements.clear()


_EXPIRED = (
    select(reservations)
    .where(reservations.c.status == ReservationStatus.RESERVED.value)
    .where(reservations.c.expires_at <= func.now())
    .order_by(reservations.c.expires_at)
    .limit(bindparam("b_limit"))
    .with_for_update(skip_locked=True)
)


class ReservationRepository(Repository[Reservation]):
    table = reservations
    key = "order_id"

    async def for_order(self, order_id: str) -> Reservation:
        """The order's reservation, locked; an absent one if nothing was asked for
        the order yet (stored only once something is)."""
        found = await self._get(order_id, for_update=True)
        if found is None:
            found = Reservation.absent(order_id)
            self._add(found)
        return found

    async def expired(self, limit: int) -> list[Reservation]:
        """Reservations past their time limit, locked; other replicas skip them."""
        return await self._find(_EXPIRED, {"b_limit": limit}, locked=True)

    def _key_of(self, reservation: Reservation) -> str:
        return reservation.order_id

    def _exists(self, reservation: Reservation) -> bool:
        return reservation.status is not ReservationStatus.ABSENT

    def _to_row(self, reservation: Reservation) -> Row:
        return {
            "order_id": reservation.order_id,
            "status": reservation.status.value,
            "lines": [
                {"sku": line.sku, "quantity": line.quantity, "unit_price": line.unit_price}
                for line in reservation.lines
            ],
            "currency": reservation.currency,
            "refusal_reason": reservation.refusal_reason,
            "refused_skus": list(reservation.refused_skus),
            "expires_at": reservation.expires_at,
        }

    def _from_row(self, row: Mapping[str, Any]) -> Reservation:
        return Reservation(
            order_id=row["order_id"],
            status=ReservationStatus(row["status"]),
            lines=[
                ReservedLine(line["sku"], line["quantity"], line["unit_price"])
                for line in row["lines"]
            ],
            currency=row["currency"],
            refusal_reason=row["refusal_reason"],
            refused_skus=list(row["refused_skus"]),
            expires_at=row["expires_at"],
        )

    def _update_of(self, reservation: Reservation, row: Row, changed: set[str]) -> Row:
        # Its status and lines are the only things that change after it was made.
        return {name: row[name] for name in ("order_id", "status", "lines")}


_OPEN = (
    pg_insert(replenishments)
    .on_conflict_do_nothing(index_elements=["sku"], index_where=replenishments.c.status == "open")
    .returning(replenishments.c.id)
)


class ReplenishmentRepository(Repository[Replenishment]):
    table = replenishments
    key = "sku"

    async def open(self, replenishment: Replenishment) -> bool:
        """Open the request, unless one is open for the SKU already (then it, and
        what it recorded, are dropped)."""
        row = {
            "sku": replenishment.sku,
            "quantity": replenishment.quantity,
            "available_at_request": replenishment.available_at_request,
        }
        if (await self._connection.execute(_OPEN, row)).first() is None:
            return False
        self._adopt(replenishment, row)
        return True

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

    def _key_of(self, replenishment: Replenishment) -> str:
        return replenishment.sku

    def _to_row(self, replenishment: Replenishment) -> Row:
        # Written once, when opened (see `open`); closed by a delivery (`fulfil`).
        return {
            "sku": replenishment.sku,
            "quantity": replenishment.quantity,
            "available_at_request": replenishment.available_at_request,
        }


def _product_row(product: Product) -> Row:
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
