"""The base of every aggregate repository: one way to read a row, one to write it.

Reading: a row comes from the transaction's `RowCache` when it is there (a batch
loader put it there, or an earlier read or write in the same transaction did), else
from one statement; a row read for update then joins the cache. So the messages of a
batch, which share one transaction, each see the rows as the earlier ones left them,
and a batch loader can read (and lock) what they all touch in one statement per table.

Writing: an aggregate read for update, or added, is tracked by the unit of work. When
it commits, the unit of work collects the events the aggregate recorded (see
`oms_runtime.messaging.events`) and asks the repository to write the aggregate back:
its whole row staged for the transaction's one write statement (`oms_runtime.bulk`),
as an update only if a value changed, as an insert if it is new. A repository adds
what is particular to its tables through a few hooks (child rows, an insert that
cannot wait for the commit); the cache and the write path stay here.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeVar

from sqlalchemy import Select, Table, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY

from oms_runtime.bulk import UPDATED_AT_NOW, Computed
from oms_runtime.messaging.events import RecordsEvents

if TYPE_CHECKING:
    from oms_runtime.messaging.unit_of_work import SharedTransaction, UnitOfWork

A = TypeVar("A", bound=RecordsEvents)
Row = dict[str, Any]

_MISSING: Final = object()


class RowCache:
    """Rows a transaction read and locked, as its work so far left them, per table
    and key (None: there is no such row). The units of work of a batch share one,
    which the batch loader fills up front; a unit of work on its own has its own."""

    def __init__(self) -> None:
        self._tables: dict[Table, dict[Any, Row | None]] = {}
        self._indexes: dict[Table, dict[str, dict[Any, Any]]] = {}
        self._loaded: dict[tuple[Table, str], set[Any]] = {}

    def of(self, table: Table) -> dict[Any, Row | None]:
        rows = self._tables.get(table)
        if rows is None:
            rows = self._tables[table] = {}
        return rows

    def index(self, table: Table, column: str) -> dict[Any, Any]:
        """The keys of `table`'s cached rows by another unique `column` (None: there is
        no such row), for aggregates looked up by something else than their key."""
        indexes = self._indexes.setdefault(table, {})
        index = indexes.get(column)
        if index is None:
            index = indexes[column] = {}
        return index

    def loaded_by(self, table: Table, column: str) -> set[Any]:
        """The values of `column` whose rows of `table` are all in the cache (a batch
        loader read and locked them), for aggregates found by a column they share."""
        loaded = self._loaded.get((table, column))
        if loaded is None:
            loaded = self._loaded[(table, column)] = set()
        return loaded

    def written(self, table: Table, key: Any, row: Row) -> None:
        """A row the transaction wrote (e.g. inserted): later lookups by an indexed
        column must find it, not an earlier 'no such row'."""
        for column, index in self._indexes.get(table, {}).items():
            if column in row:
                index[row[column]] = key


@dataclass(frozen=True)
class _Statements:
    one: Select[Any]
    one_for_update: Select[Any]
    many: Select[Any]
    many_for_update: Select[Any]


@functools.cache
def _statements(table: Table, key: str) -> _Statements:
    # Built once: constructing a statement per call costs more CPU than its round trip.
    one = select(table).where(table.c[key] == bindparam("b_key"))
    # In key order, so two transactions locking the same rows queue, never deadlock.
    many = (
        select(table)
        .where(table.c[key] == any_(bindparam("b_keys", type_=ARRAY(table.c[key].type))))
        .order_by(table.c[key])
    )
    return _Statements(one, one.with_for_update(), many, many.with_for_update())


@functools.cache
def _locked_by(table: Table, key: str, column: str) -> Select[Any]:
    # Locked in key order, like every other batch read, so that it queues behind, and
    # never deadlocks with, a transaction locking some of the same rows by key.
    return (
        select(table)
        .where(table.c[column] == any_(bindparam("b_values", type_=ARRAY(table.c[column].type))))
        .order_by(table.c[key])
        .with_for_update()
    )


@dataclass
class _Tracked(Generic[A]):
    aggregate: A
    # The row as the transaction last had it (None: added by this unit of work).
    row: Row | None


class Repository(Generic[A]):
    """Subclasses name their table and key column and map an aggregate to a row and
    back; everything else is here."""

    table: ClassVar[Table]
    key: ClassVar[str]
    # Set by every update besides the row's own values.
    computed: ClassVar[Computed] = UPDATED_AT_NOW

    def __init__(self, unit_of_work: UnitOfWork) -> None:
        # Weak: the unit of work holds its repositories, and a strong reference back
        # would make every transaction's objects a cycle that only the garbage
        # collector frees (tests/integration/test_nothing_left_for_the_collector.py).
        self._unit_of_work = weakref.proxy(unit_of_work)
        self._connection = unit_of_work.connection
        self._rows = unit_of_work.rows.of(self.table)
        self._tracked: dict[Any, _Tracked[A]] = {}
        unit_of_work.track(self)

    # -- what a repository says about its aggregate --------------------------------

    def _key_of(self, aggregate: A) -> Any:
        raise NotImplementedError

    def _to_row(self, aggregate: A) -> Row:
        """Every column the aggregate determines, as written."""
        raise NotImplementedError

    def _from_row(self, row: Mapping[str, Any]) -> A:
        raise NotImplementedError

    def _update_of(self, aggregate: A, row: Row, changed: set[str]) -> Row:
        """What an update writes (the key included), given the columns that changed;
        by default the whole row, so the statement has one shape whatever changed."""
        return row

    def _exists(self, aggregate: A) -> bool:
        """Whether the aggregate has a row at all (one that only stands for the
        absence of something records events but is never written)."""
        return True

    async def _insert(self, row: Row) -> None:
        """A new aggregate's row: with the commit, by default."""
        self._unit_of_work.insert_on_commit(self.table, [row])

    async def _write_along(self, aggregate: A) -> None:
        """Rows that go with the aggregate's (a ledger, an audit trail)."""

    # -- reading -------------------------------------------------------------------

    async def _get(self, key: Any, *, for_update: bool = False) -> A | None:
        tracked = self._tracked.get(key)
        if tracked is not None:
            return tracked.aggregate
        row = self._rows.get(key, _MISSING)
        if row is _MISSING:
            statements = _statements(self.table, self.key)
            statement = statements.one_for_update if for_update else statements.one
            found = (await self._connection.execute(statement, {"b_key": key})).mappings().first()
            row = dict(found) if found is not None else None
            if not for_update:
                # A look, not a change: nothing locked, nothing to write back.
                return self._from_row(row) if row is not None else None
            self._rows[key] = row
        return self._track(row) if isinstance(row, dict) else None

    async def _get_many(self, keys: Iterable[Any], *, for_update: bool = False) -> dict[Any, A]:
        """The aggregates of `keys` that exist; those not read yet in one statement."""
        wanted = sorted(set(keys))
        missing = [key for key in wanted if key not in self._tracked and key not in self._rows]
        fresh: dict[Any, Row | None] = dict.fromkeys(missing)
        if missing:
            statements = _statements(self.table, self.key)
            statement = statements.many_for_update if for_update else statements.many
            result = await self._connection.execute(statement, {"b_keys": missing})
            for found in result.mappings():
                fresh[found[self.key]] = dict(found)
            if for_update:
                self._rows.update(fresh)
        aggregates: dict[Any, A] = {}
        for key in wanted:
            tracked = self._tracked.get(key)
            if tracked is not None:
                aggregates[key] = tracked.aggregate
                continue
            row = self._rows.get(key) if key not in fresh else fresh[key]
            if row is not None:
                aggregates[key] = self._track(row) if for_update else self._from_row(row)
        return aggregates

    async def _find(
        self, statement: Any, parameters: Mapping[str, Any] | None = None, *, locked: bool
    ) -> list[A]:
        """The aggregates whose rows a statement of the repository's own selects;
        `locked`: it locks them (FOR UPDATE), so they are tracked. A row this
        transaction changed already is taken as the transaction has it."""
        result = await self._connection.execute(statement, dict(parameters or {}))
        found: list[A] = []
        for selected in result.mappings():
            key = selected[self.key]
            tracked = self._tracked.get(key)
            if tracked is not None:
                found.append(tracked.aggregate)
                continue
            cached = self._rows.get(key)
            row = cached if cached is not None else dict(selected)
            if locked:
                self._rows[key] = row
                found.append(self._track(row))
            else:
                found.append(self._from_row(row))
        return found

    async def _get_by(
        self,
        column: str,
        value: Any,
        statement: Any,
        parameters: Mapping[str, Any],
        *,
        for_update: bool = False,
    ) -> A | None:
        """The aggregate whose unique `column` is `value`: from the cache when a batch
        loader locked it (or found there is none, `preload_by`), else by `statement`."""
        if for_update:
            key = self._unit_of_work.rows.index(self.table, column).get(value, _MISSING)
            if key is None:
                return None
            if key is not _MISSING:
                return await self._get(key, for_update=True)
        found = await self._find(statement, parameters, locked=for_update)
        return found[0] if found else None

    def _track(self, row: Row) -> A:
        aggregate = self._from_row(row)
        self._tracked[row[self.key]] = _Tracked(aggregate, row)
        return aggregate

    def _add(self, aggregate: A) -> None:
        """Insert the aggregate with the commit (and collect its events)."""
        self._tracked[self._key_of(aggregate)] = _Tracked(aggregate, None)

    def _adopt(self, aggregate: A, row: Row) -> None:
        """Track an aggregate whose row was just written by a statement of the
        repository's own: only later changes are written back."""
        key = self._key_of(aggregate)
        self._rows[key] = row
        self._tracked[key] = _Tracked(aggregate, row)

    # -- the unit of work's side ---------------------------------------------------

    def tracked(self) -> list[A]:
        """The aggregates this unit of work may change (read for update, or added)."""
        return [tracked.aggregate for tracked in self._tracked.values()]

    def read(self) -> list[tuple[A, Row | None]]:
        """Each tracked aggregate with its row as read (None: added)."""
        return [(tracked.aggregate, tracked.row) for tracked in self._tracked.values()]

    async def flush(self) -> None:
        """Write back what changed (called by the unit of work on commit)."""
        for key, tracked in self._tracked.items():
            if not self._exists(tracked.aggregate):
                continue
            row = self._to_row(tracked.aggregate)
            before = tracked.row
            if before is None:
                await self._insert(row)
            else:
                changed = {
                    name for name, value in row.items() if before.get(name, _MISSING) != value
                }
                if changed:
                    update = self._update_of(tracked.aggregate, row, changed)
                    self._unit_of_work.update_on_commit(
                        self.table, self.key, update, computed=self.computed
                    )
                    row = {**before, **row}
                else:
                    row = before
            # Later reads in the transaction (the batch's next messages) see it as written.
            self._rows[key] = tracked.row = row
            if before is None:
                self._unit_of_work.rows.written(self.table, key, row)
            await self._write_along(tracked.aggregate)

    @classmethod
    async def preload(cls, shared: SharedTransaction, keys: Iterable[Any]) -> list[Row]:
        """Read and lock, in one statement and in key order, the rows of `keys` that a
        batch's messages will touch; keys without a row are remembered as such.
        Returns the rows found."""
        wanted = sorted(set(keys))
        if not wanted:
            return []
        result = await shared.connection.execute(
            _statements(cls.table, cls.key).many_for_update, {"b_keys": wanted}
        )
        found = [dict(row) for row in result.mappings()]
        rows = shared.rows.of(cls.table)
        rows.update(dict.fromkeys(wanted))
        rows.update((row[cls.key], row) for row in found)
        return found

    @classmethod
    async def preload_by(
        cls, shared: SharedTransaction, column: str, values: Iterable[Any]
    ) -> None:
        """Like `preload`, for rows looked up by another unique `column` (see
        `_get_by`): read and lock them in one statement, in key order; values without
        a row are remembered as such."""
        wanted, found = await cls._lock_rows_by(shared, column, values)
        index = shared.rows.index(cls.table, column)
        index.update(dict.fromkeys(wanted))
        index.update((row[column], row[cls.key]) for row in found)

    @classmethod
    async def preload_all_by(
        cls, shared: SharedTransaction, column: str, values: Iterable[Any]
    ) -> None:
        """Read and lock, in one statement and in key order, every row whose `column`
        (not unique: an order's parcels) is one of `values`; `RowCache.loaded_by`
        then says that the cache holds all of them."""
        wanted, _ = await cls._lock_rows_by(shared, column, values)
        shared.rows.loaded_by(cls.table, column).update(wanted)

    @classmethod
    async def _lock_rows_by(
        cls, shared: SharedTransaction, column: str, values: Iterable[Any]
    ) -> tuple[list[Any], list[Row]]:
        """The values asked for (sorted, once each) and the rows whose `column` is one
        of them, read and locked in key order and put in the batch's cache."""
        wanted = sorted(set(values))
        if not wanted:
            return [], []
        result = await shared.connection.execute(
            _locked_by(cls.table, cls.key, column), {"b_values": wanted}
        )
        found = [dict(row) for row in result.mappings()]
        shared.rows.of(cls.table).update((row[cls.key], row) for row in found)
        return wanted, found
