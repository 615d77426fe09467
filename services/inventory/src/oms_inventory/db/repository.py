"""Maps locations, products (with their stock per location), reservations, booked
returns and replenishment requests to their tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Text, any_, bindparam, func, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from oms_contracts import Envelope
from oms_inventory.db.tables import (
    locations,
    products,
    replenishments,
    reservations,
    restock_receipts,
    stock,
    stock_movements,
    stock_returns,
)
from oms_inventory.domain.allocation import Location
from oms_inventory.domain.model import (
    Product,
    Replenishment,
    Reservation,
    ReservationStatus,
    ReservedLine,
    ReturnCondition,
    ReturnedUnits,
    StockLevel,
    StockReturn,
)
from oms_runtime.bulk import UPDATED_AT_NOW
from oms_runtime.messaging.unit_of_work import SharedTransaction, UnitOfWork
from oms_runtime.repository import Repository, Row


async def load_stock_for_batch(shared: SharedTransaction, envelopes: list[Envelope]) -> None:
    """Lock and read the reservations and stock a batch of messages is about: the
    reservations of their orders (in order id order), then the stock rows, at every
    location, of every product named in them or in the messages' lines (in (sku,
    location) order, as every stock change locks), with their products, then the
    bookings of the returns they name.

    The batch's handlers then find these rows in memory and write their changes
    with the batch's commit, in one statement."""
    order_ids: set[str] = set()
    skus: set[str] = set()
    return_ids: set[str] = set()
    for envelope in envelopes:
        data = envelope.data
        if isinstance(data.get("order_id"), str):
            order_ids.add(data["order_id"])
        if isinstance(data.get("return_id"), str):
            return_ids.add(data["return_id"])
        if isinstance(data.get("sku"), str):
            skus.add(data["sku"])
        for line in data.get("lines") or ():
            if isinstance(line, dict) and isinstance(line.get("sku"), str):
                skus.add(line["sku"])
    for row in await ReservationRepository.preload(shared, order_ids):
        skus.update(line["sku"] for line in row["lines"])
    await ProductRepository.preload(shared, skus)
    await StockReturnRepository.preload(shared, return_ids)


# -- locations -------------------------------------------------------------------


def location_of(row: Mapping[Any, Any], code: str | None = None) -> Location:
    """A location from its row (or a row carrying its details, with its `code`)."""
    serves = row["serves"]
    return Location(
        code=code if code is not None else row["code"],
        country=row["country"],
        priority=row["priority"],
        serves=frozenset(serves) if serves is not None else None,
    )


def location_details(location: Location) -> Row:
    return {
        "country": location.country,
        "priority": location.priority,
        "serves": sorted(location.serves) if location.serves is not None else None,
    }


_ADD_LOCATION = (
    pg_insert(locations).on_conflict_do_nothing(index_elements=["code"]).returning(locations.c.code)
)
_LOCATIONS_NAMED = select(locations).where(
    locations.c.code == any_(bindparam("b_codes", type_=ARRAY(Text)))
)


class LocationRepository:
    """Locations are values once made (nothing changes them), so they are read as
    they are and written once."""

    def __init__(self, unit_of_work: UnitOfWork) -> None:
        self._connection = unit_of_work.connection

    async def add(self, location: Location, name: str) -> bool:
        """False if the code is taken."""
        row = {"code": location.code, "name": name, **location_details(location)}
        return (await self._connection.execute(_ADD_LOCATION, row)).first() is not None

    async def get_many(self, codes: Iterable[str]) -> dict[str, Location]:
        result = await self._connection.execute(_LOCATIONS_NAMED, {"b_codes": sorted(set(codes))})
        return {row["code"]: location_of(row) for row in result.mappings()}


# -- products and their stock ----------------------------------------------------

_SKUS = bindparam("b_skus", type_=ARRAY(Text))
_PRODUCT_COLUMNS = (
    "sku",
    "name",
    "unit_price",
    "currency",
    "low_stock_threshold",
    "reorder_quantity",
)


def _products_with_stock(*, lock: bool) -> Any:
    """The products of `b_skus` with a row per location they are stocked at, and
    the location's details. Locking, it locks the stock rows (not the products,
    which only staff edit), all of them in (sku, location) order, in one statement:
    two orders touching the same SKUs then queue, never deadlock."""
    levels = select(stock).where(stock.c.sku == any_(_SKUS)).order_by(stock.c.sku, stock.c.location)
    if lock:
        # Materialized, so the rows are locked in that order before the joins.
        levels_cte = levels.with_for_update().cte("levels").prefix_with("MATERIALIZED")
    else:
        levels_cte = levels.cte("levels")
    return (
        select(
            *(products.c[name] for name in _PRODUCT_COLUMNS),
            levels_cte.c.id.label("stock_id"),
            levels_cte.c.location,
            levels_cte.c.on_hand,
            levels_cte.c.reserved,
            levels_cte.c.low_stock_alerted,
            levels_cte.c.damaged,
            locations.c.country,
            locations.c.priority,
            locations.c.serves,
        )
        .select_from(
            products.outerjoin(levels_cte, levels_cte.c.sku == products.c.sku).outerjoin(
                locations, locations.c.code == levels_cte.c.location
            )
        )
        .where(products.c.sku == any_(_SKUS))
        .order_by(products.c.sku, levels_cte.c.location)
    )


_PRODUCTS_LOCKED = _products_with_stock(lock=True)
_PRODUCTS_READ = _products_with_stock(lock=False)
# A product starts being stocked at a location (if the location exists).
_OPEN_LEVEL = (
    pg_insert(stock)
    .from_select(
        ["sku", "location", "on_hand"],
        select(bindparam("b_sku", type_=Text), locations.c.code, literal(0)).where(
            locations.c.code == bindparam("b_location", type_=Text)
        ),
    )
    .on_conflict_do_nothing(index_elements=["sku", "location"])
)
_LEVEL_LOCKED = (
    select(
        stock.c.id.label("stock_id"),
        stock.c.location,
        stock.c.on_hand,
        stock.c.reserved,
        stock.c.low_stock_alerted,
        stock.c.damaged,
        locations.c.country,
        locations.c.priority,
        locations.c.serves,
    )
    .select_from(stock.join(locations, locations.c.code == stock.c.location))
    .where(stock.c.sku == bindparam("b_sku"), stock.c.location == bindparam("b_location"))
    .with_for_update(of=stock)
)
_LOCK_PRODUCT = select(products.c.sku).where(products.c.sku == bindparam("b_sku")).with_for_update()
_ADD_PRODUCT = (
    pg_insert(products).on_conflict_do_nothing(index_elements=["sku"]).returning(products.c.sku)
)
_ADD_LEVELS = pg_insert(stock).returning(stock.c.id, stock.c.location)
_STOCK_COLUMNS = ("on_hand", "reserved", "low_stock_alerted", "damaged")
_LEVEL_DETAILS = ("location", *_STOCK_COLUMNS)
_LOW_STOCK_DISAGREES = (
    select(stock.c.sku)
    .select_from(stock.join(products, products.c.sku == stock.c.sku))
    .where(
        (
            (products.c.low_stock_threshold > 0)
            & (stock.c.on_hand - stock.c.reserved <= products.c.low_stock_threshold)
        )
        != stock.c.low_stock_alerted
    )
    .group_by(stock.c.sku)
    .order_by(stock.c.sku)
    .limit(bindparam("b_limit"))
)


def _split(rows: Iterable[Mapping[Any, Any]]) -> dict[str, tuple[Row, dict[str, Row]]]:
    """Joined rows -> per SKU: the product's row, and its stock rows by location."""
    found: dict[str, tuple[Row, dict[str, Row]]] = {}
    for row in rows:
        sku = row["sku"]
        if sku not in found:
            found[sku] = ({name: row[name] for name in _PRODUCT_COLUMNS}, {})
        if row["stock_id"] is not None:
            found[sku][1][row["location"]] = _level_row(row)
    return found


def _level_row(row: Mapping[Any, Any]) -> Row:
    return {
        "id": row["stock_id"],
        **{name: row[name] for name in _LEVEL_DETAILS},
        "country": row["country"],
        "priority": row["priority"],
        "serves": row["serves"],
    }


def _level_of(row: Mapping[Any, Any]) -> StockLevel:
    return StockLevel(
        location_of(row, row["location"]), **{name: row[name] for name in _STOCK_COLUMNS}
    )


class ProductRepository(Repository[Product]):
    """A product is its row (which staff edit) and its stock rows, one per location
    it is stocked at (which orders change). The product rows live in the base
    class's row cache; the stock rows in the transaction's cache of the `stock`
    table, by SKU: {location: row}."""

    table = products
    key = "sku"

    def __init__(self, unit_of_work: UnitOfWork) -> None:
        super().__init__(unit_of_work)
        self._levels = unit_of_work.rows.of(stock)

    async def add(self, product: Product) -> bool:
        """Insert at once, with its stock rows; False if the SKU exists already."""
        row = _product_row(product)
        if (await self._connection.execute(_ADD_PRODUCT, row)).first() is None:
            return False
        levels: dict[str, Row] = {}
        if product.levels:
            written = await self._connection.execute(
                _ADD_LEVELS,
                [{"sku": product.sku, **_row_of_level(level)} for level in product.levels.values()],
            )
            ids = {found["location"]: found["id"] for found in written.mappings()}
            levels = {
                code: {"id": ids[code], **_row_of_level(level), **location_details(level.location)}
                for code, level in product.levels.items()
            }
        self._levels[product.sku] = levels
        self._adopt(product, row)
        return True

    async def get(self, sku: str, *, for_update: bool = False) -> Product | None:
        return (await self.get_many([sku], for_update=for_update)).get(sku)

    async def get_to_edit(self, sku: str) -> Product | None:
        """For update, and its product row locked first: orders never lock it (they
        change only stock rows and read the product as it is), staff edits do, so
        two edits of the same product queue and the second reads what the first
        wrote."""
        await self._connection.execute(_LOCK_PRODUCT, {"b_sku": sku})
        return await self.get(sku, for_update=True)

    async def get_many(
        self, skus: Iterable[str], *, for_update: bool = False
    ) -> dict[str, Product]:
        """Locking: the stock rows of all of them, at every location, in (sku,
        location) order (see `_products_with_stock`)."""
        wanted = sorted(set(skus))
        missing = [sku for sku in wanted if sku not in self._tracked and sku not in self._rows]
        fresh: dict[str, tuple[Row, dict[str, Row]]] = {}
        if missing:
            statement = _PRODUCTS_LOCKED if for_update else _PRODUCTS_READ
            result = await self._connection.execute(statement, {"b_skus": missing})
            fresh = _split(result.mappings())
            if for_update:
                self._remember(missing, fresh)
        found: dict[str, Product] = {}
        for sku in wanted:
            tracked = self._tracked.get(sku)
            if tracked is not None:
                found[sku] = tracked.aggregate
            elif sku in fresh and not for_update:
                # A look, not a change: nothing locked, nothing to write back.
                found[sku] = _product_of(*fresh[sku])
            elif (row := self._rows.get(sku)) is not None:
                found[sku] = self._track(row) if for_update else self._from_row(row)
        return found

    async def open_level(self, product: Product, location: str) -> bool:
        """Make sure `product` (read for update) has a stock row at `location`, empty
        if new, and hold its lock; False if there is no such location."""
        if location in product.levels:
            return True
        parameters = {"b_sku": product.sku, "b_location": location}
        await self._connection.execute(_OPEN_LEVEL, parameters)
        row = (await self._connection.execute(_LEVEL_LOCKED, parameters)).mappings().first()
        if row is None:
            return False
        self._levels[product.sku] = {**self._levels_of(product.sku), location: _level_row(row)}
        product.levels[location] = _level_of(row)
        return True

    async def needing_low_stock_review(self, limit: int) -> list[Product]:
        """Products whose low-stock flag at some location disagrees with the stock
        there (the periodic check; events normally keep them in step), locked as
        every stock change locks them. Found without locking first: locking some of
        a product's stock rows before the others would break the one order."""
        result = await self._connection.execute(_LOW_STOCK_DISAGREES, {"b_limit": limit})
        skus = [row.sku for row in result]
        return list((await self.get_many(skus, for_update=True)).values())

    @classmethod
    async def preload(cls, shared: SharedTransaction, keys: Iterable[Any]) -> list[Row]:
        """Read and lock, in one statement, the products of `keys` with their stock
        at every location, for a batch's messages."""
        wanted = sorted(set(keys))
        if not wanted:
            return []
        result = await shared.connection.execute(_PRODUCTS_LOCKED, {"b_skus": wanted})
        found = _split(result.mappings())
        cls._remember_in(shared.rows.of(products), shared.rows.of(stock), wanted, found)
        return [product_row for product_row, _ in found.values()]

    def _remember(
        self, wanted: Sequence[str], found: Mapping[str, tuple[Row, dict[str, Row]]]
    ) -> None:
        self._remember_in(self._rows, self._levels, wanted, found)

    @staticmethod
    def _remember_in(
        product_rows: dict[Any, Row | None],
        level_rows: dict[Any, Row | None],
        wanted: Sequence[str],
        found: Mapping[str, tuple[Row, dict[str, Row]]],
    ) -> None:
        # SKUs without a product are remembered as such.
        product_rows.update(dict.fromkeys(wanted))
        for sku, (product_row, levels) in found.items():
            product_rows[sku] = product_row
            level_rows[sku] = levels

    def _key_of(self, product: Product) -> str:
        return product.sku

    def _to_row(self, product: Product) -> Row:
        return _product_row(product)

    def _from_row(self, row: Mapping[str, Any]) -> Product:
        return _product_of(row, self._levels_of(row["sku"]))

    def _levels_of(self, sku: str) -> Row:
        return self._levels.get(sku) or {}

    async def _write_along(self, product: Product) -> None:
        # Each stock row whose numbers changed, by its id.
        levels = dict(self._levels_of(product.sku))
        for code, level in product.levels.items():
            before = levels[code]
            after = {name: getattr(level, name) for name in _STOCK_COLUMNS}
            if any(before[name] != value for name, value in after.items()):
                self._unit_of_work.update_on_commit(
                    stock, "id", {"id": before["id"], **after}, computed=UPDATED_AT_NOW
                )
                # Later reads in the transaction (the batch's next messages) see it so.
                levels[code] = {**before, **after}
        self._levels[product.sku] = levels
        # The ledger is append-only and never read back in the same transaction.
        self._unit_of_work.insert_on_commit(
            stock_movements,
            [
                {
                    "sku": m.sku,
                    "location": m.location,
                    "reason": m.reason.value,
                    "on_hand_delta": m.on_hand_delta,
                    "reserved_delta": m.reserved_delta,
                    "damaged_delta": m.damaged_delta,
                    "order_id": m.order_id,
                    "note": m.note,
                }
                for m in product.movements
            ],
        )
        product.movements.clear()


def _product_row(product: Product) -> Row:
    return {name: getattr(product, name) for name in _PRODUCT_COLUMNS}


def _row_of_level(level: StockLevel) -> Row:
    return {"location": level.code, **{name: getattr(level, name) for name in _STOCK_COLUMNS}}


def _product_of(row: Mapping[str, Any], levels: Mapping[str, Row]) -> Product:
    return Product(
        **{name: row[name] for name in _PRODUCT_COLUMNS},
        levels={code: _level_of(level) for code, level in levels.items()},
    )


# -- reservations ------------------------------------------------------------------

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
                {
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                    "location": line.location,
                    "committed": line.committed,
                }
                for line in reservation.lines
            ],
            "currency": reservation.currency,
            "refusal_reason": reservation.refusal_reason,
            "refused_skus": list(reservation.refused_skus),
            "expires_at": reservation.expires_at,
            "locations": [
                {"code": location.code, **location_details(location)}
                for location in reservation.locations
            ],
            "country": reservation.country,
        }

    def _from_row(self, row: Mapping[str, Any]) -> Reservation:
        return Reservation(
            order_id=row["order_id"],
            status=ReservationStatus(row["status"]),
            lines=[
                ReservedLine(
                    line["sku"],
                    line["quantity"],
                    line["unit_price"],
                    line["location"],
                    line["committed"],
                )
                for line in row["lines"]
            ],
            currency=row["currency"],
            refusal_reason=row["refusal_reason"],
            refused_skus=list(row["refused_skus"]),
            expires_at=row["expires_at"],
            locations=[location_of(location) for location in row["locations"]],
            country=row["country"],
        )

    def _update_of(self, reservation: Reservation, row: Row, changed: set[str]) -> Row:
        # Its status and lines are what change after it was made; a re-allocation
        # (new items) also changes its locations and destination.
        names = ["order_id", "status", "lines"]
        if changed & {"locations", "country"}:
            names += ["locations", "country"]
        return {name: row[name] for name in names}


# -- returns -----------------------------------------------------------------------


class StockReturnRepository(Repository[StockReturn]):
    """A return's booking is written once, when made, and never changes."""

    table = stock_returns
    key = "return_id"

    async def for_return(self, return_id: str, order_id: str) -> StockReturn:
        """The return's booking, locked; an absent one if nothing was booked for it
        yet (stored only once something is)."""
        found = await self._get(return_id, for_update=True)
        if found is None:
            found = StockReturn.absent(return_id, order_id)
            self._add(found)
        return found

    def _key_of(self, booking: StockReturn) -> str:
        return booking.return_id

    def _exists(self, booking: StockReturn) -> bool:
        return booking.booked

    def _to_row(self, booking: StockReturn) -> Row:
        return {
            "return_id": booking.return_id,
            "order_id": booking.order_id,
            "lines": [
                {
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "condition": line.condition.value,
                    "location": line.location,
                }
                for line in booking.lines
            ],
        }

    def _from_row(self, row: Mapping[str, Any]) -> StockReturn:
        return StockReturn(
            return_id=row["return_id"],
            order_id=row["order_id"],
            lines=tuple(
                ReturnedUnits(
                    line["sku"],
                    line["quantity"],
                    ReturnCondition(line["condition"]),
                    line["location"],
                )
                for line in row["lines"]
            ),
            booked=True,
        )


# -- replenishment -----------------------------------------------------------------

_OPEN = (
    pg_insert(replenishments)
    .on_conflict_do_nothing(
        index_elements=["sku", "location"], index_where=replenishments.c.status == "open"
    )
    .returning(replenishments.c.id)
)


class ReplenishmentRepository(Repository[Replenishment]):
    table = replenishments
    key = "sku"

    async def open(self, replenishment: Replenishment) -> bool:
        """Open the request, unless one is open for the SKU at that location already
        (then it, and what it recorded, are dropped)."""
        row = self._to_row(replenishment)
        if (await self._connection.execute(_OPEN, row)).first() is None:
            return False
        self._adopt(replenishment, row)
        return True

    async def fulfil(self, sku: str, reference: str | None, location: str) -> None:
        await self._connection.execute(
            update(replenishments)
            .where(
                replenishments.c.sku == sku,
                replenishments.c.location == location,
                replenishments.c.status == "open",
            )
            .values(status="fulfilled", fulfilled_at=func.now(), fulfilled_by=reference)
        )

    async def claim_receipt(self, sku: str, reference: str, quantity: int, location: str) -> bool:
        """Remember a delivery to `location`; False if this one was counted before."""
        result = await self._connection.execute(
            pg_insert(restock_receipts)
            .values(sku=sku, reference=reference, quantity=quantity, location=location)
            .on_conflict_do_nothing()
            .returning(restock_receipts.c.sku)
        )
        return result.first() is not None

    def _key_of(self, replenishment: Replenishment) -> tuple[str, str]:
        # One per SKU and location may be opened in the same transaction.
        return replenishment.sku, replenishment.location

    def _to_row(self, replenishment: Replenishment) -> Row:
        # Written once, when opened (see `open`); closed by a delivery (`fulfil`).
        return {
            "sku": replenishment.sku,
            "location": replenishment.location,
            "quantity": replenishment.quantity,
            "available_at_request": replenishment.available_at_request,
        }
