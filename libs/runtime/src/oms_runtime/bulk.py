"""Set-based writes: everything a transaction staged, in one statement.

An executemany of N rows is N executions in Postgres, and each table written is one
more round trip. Here each table's rows travel as one array per column, unpacked
with `unnest` (`INSERT ... SELECT FROM unnest(...)`, `UPDATE ... FROM unnest(...)`),
and all the tables' writes are parts of one statement (data-modifying `WITH`
clauses), so a unit of work's history, outbox and state rows cost one round trip.
The statement text depends only on which tables and columns are written, not on how
many rows, so each shape is prepared once per connection.

The parts of one statement see the same snapshot and not each other's effects: the
staged writes must not depend on each other (they are appends, and updates of rows
read earlier in the transaction).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import ARRAY, JSON, Table
from sqlalchemy.dialects.postgresql.base import PGDialect

_DIALECT = PGDialect()  # type: ignore[no-untyped-call]

_CHANNEL = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# (column, SQL expression) pairs an update sets besides the staged values; the
# expression may use the row's old values (`t."column"`) and new ones (`v."column"`).
Computed = tuple[tuple[str, str], ...]
# What most updates compute: the row's modification time.
UPDATED_AT_NOW: Computed = (("updated_at", "now()"),)

# A write that cannot be a part of the one statement: it needs the rows that
# statement inserts (a foreign key), or its answer (RETURNING). It runs right after
# that statement, once per transaction, with the items every unit of work in it
# staged for it (given the asyncpg connection), and returns what to run once the
# transaction has committed.
FollowUp = Callable[[Any, list[Any]], Awaitable[list[Callable[[], None]]]]


@dataclass
class StagedWrites:
    """Rows to insert and rows to update, per table, written together at commit."""

    inserts: dict[Table, list[dict[str, Any]]] = field(default_factory=dict)
    updates: dict[tuple[Table, str, Computed], dict[Any, dict[str, Any]]] = field(
        default_factory=dict
    )
    # A channel to NOTIFY with the writes (delivered by Postgres on commit).
    notify: str | None = None
    # Writes made after the statement, each once with all its items (in staging order).
    follow_ups: dict[FollowUp, list[Any]] = field(default_factory=dict)

    def insert(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.inserts.setdefault(table, []).extend(rows)

    def update(
        self, table: Table, key: str, row: dict[str, Any], *, computed: Computed = ()
    ) -> None:
        """Set `row`'s columns on the row whose `key` column equals `row[key]`; a
        later update of the same row replaces an earlier one, and an update of a row
        staged for insert changes the insert (the parts of one statement do not see
        each other's rows)."""
        for inserted in self.inserts.get(table, ()):
            if inserted.get(key) == row[key]:
                inserted.update(row)
                return
        self.updates.setdefault((table, key, computed), {})[row[key]] = row

    def follow_up(self, write: FollowUp, items: Sequence[Any]) -> None:
        if items:
            self.follow_ups.setdefault(write, []).extend(items)

    def extend(self, other: StagedWrites) -> None:
        for table, rows in other.inserts.items():
            self.insert(table, rows)
        for (table, key, computed), rows_by_key in other.updates.items():
            for row in rows_by_key.values():
                self.update(table, key, row, computed=computed)
        self.notify = self.notify or other.notify
        for write, items in other.follow_ups.items():
            self.follow_up(write, items)

    def clear(self) -> None:
        self.inserts.clear()
        self.updates.clear()
        self.notify = None
        self.follow_ups.clear()

    def statement(self) -> tuple[str, list[Any]] | None:
        """The one statement making all the staged writes and its arguments (None
        when nothing is staged)."""
        parts: list[str] = []
        arguments: list[Any] = []
        for (table, key, computed), rows_by_key in self.updates.items():
            for columns, group in _by_columns(list(rows_by_key.values())):
                sql, encoders = _unnest_update(table, key, columns, computed, len(arguments))
                parts.append(sql)
                arguments.extend(_arrays(group, columns, encoders))
        for table, rows in self.inserts.items():
            for columns, group in _by_columns(rows):
                sql, encoders = _unnest_insert(table, columns, len(arguments))
                parts.append(sql)
                arguments.extend(_arrays(group, columns, encoders))
        if not parts:
            return None
        if len(parts) == 1 and self.notify is None:
            return parts[0], arguments
        clauses = ", ".join(f"w{index} AS ({part})" for index, part in enumerate(parts))
        if self.notify is None:
            return f"WITH {clauses} SELECT 1", arguments
        if not _CHANNEL.fullmatch(self.notify):
            raise ValueError(f"not a channel name: {self.notify!r}")
        return f"WITH {clauses} SELECT pg_notify('{self.notify}', '')", arguments


def _by_columns(
    rows: Sequence[dict[str, Any]],
) -> list[tuple[tuple[str, ...], list[dict[str, Any]]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    return list(groups.items())


def _arrays(
    rows: list[dict[str, Any]], columns: tuple[str, ...], encoders: tuple[Any, ...]
) -> list[list[Any]]:
    return [
        [encode(row[name]) for row in rows] for name, encode in zip(columns, encoders, strict=True)
    ]


def _as_is(value: Any) -> Any:
    return value


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _json_text_null_as_json(value: Any) -> str:
    # What SQLAlchemy writes for None in a JSON column unless told `none_as_null`.
    return orjson.dumps(value).decode()


def _array_literal(values: Sequence[Any] | None) -> str | None:
    # unnest() flattens arrays of arrays, so array values travel as their text form.
    if values is None:
        return None
    items = (
        "NULL" if item is None else '"' + str(item).replace("\\", "\\\\").replace('"', '\\"') + '"'
        for item in values
    )
    return "{" + ",".join(items) + "}"


def _column_array(table: Table, name: str, position: int) -> tuple[str, str, Any]:
    """(the parameter, the value selected from unnest, the encoder) of one column."""
    column_type = table.c[name].type
    type_name = column_type.compile(dialect=_DIALECT)
    if isinstance(column_type, JSON):
        # No codec for arrays of JSON is registered on the connection.
        encode = _json_text if column_type.none_as_null else _json_text_null_as_json
        return f"${position}::text[]", f'v."{name}"::{type_name}', encode
    if isinstance(column_type, ARRAY):
        return f"${position}::text[]", f'v."{name}"::{type_name}', _array_literal
    return f"${position}::{type_name}[]", f'v."{name}"', _as_is


def _unnest(
    table: Table, columns: tuple[str, ...], offset: int
) -> tuple[str, list[str], tuple[Any, ...]]:
    """`unnest(...) AS v(<the columns' names>)`, the values to take from it, and how
    to encode each column's values."""
    params, selected, encoders = [], [], []
    positions = range(offset + 1, offset + len(columns) + 1)
    for position, name in zip(positions, columns, strict=True):
        param, value, encoder = _column_array(table, name, position)
        params.append(param)
        selected.append(value)
        encoders.append(encoder)
    aliases = ", ".join(f'"{name}"' for name in columns)
    return f"unnest({', '.join(params)}) AS v({aliases})", selected, tuple(encoders)


def _target(table: Table) -> str:
    return f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'


def insert_from_arrays(table: Table, rows: list[dict[str, Any]]) -> tuple[str, list[Any]]:
    """`INSERT INTO table (...) SELECT ... FROM unnest(...)` for rows that all have
    the same columns, and its arguments; a caller may append `ON CONFLICT` and
    `RETURNING` clauses (the target table goes by its own name in them)."""
    columns = tuple(rows[0])
    sql, encoders = _unnest_insert(table, columns, 0)
    return sql, _arrays(rows, columns, encoders)


@functools.cache
def _unnest_insert(
    table: Table, columns: tuple[str, ...], offset: int
) -> tuple[str, tuple[Any, ...]]:
    source, selected, encoders = _unnest(table, columns, offset)
    names = ", ".join(f'"{name}"' for name in columns)
    statement = f"INSERT INTO {_target(table)} ({names}) SELECT {', '.join(selected)} FROM {source}"
    return statement, encoders


@functools.cache
def _unnest_update(
    table: Table, key: str, columns: tuple[str, ...], computed: Computed, offset: int
) -> tuple[str, tuple[Any, ...]]:
    source, selected, encoders = _unnest(table, columns, offset)
    assignments = [
        f'"{name}" = {value}' for name, value in zip(columns, selected, strict=True) if name != key
    ]
    assignments += [f'"{name}" = {expression}' for name, expression in computed]
    key_value = selected[columns.index(key)]
    statement = (
        f"UPDATE {_target(table)} AS t SET {', '.join(assignments)} "
        f'FROM {source} WHERE t."{key}" = {key_value}'
    )
    return statement, encoders
