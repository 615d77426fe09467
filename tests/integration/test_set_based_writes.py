"""The one-statement writes and the hand-made transactions of the hot paths, against
a real Postgres: values of every column kind survive the trip, several tables are
written at once, follow-up writes run once per transaction with every unit of work's
items, a transaction that is not committed leaves nothing behind, and a dead
connection never goes back to the pool."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from oms_runtime.bulk import StagedWrites
from oms_runtime.messaging.tables import MessagingTables
from oms_runtime.messaging.transaction import Transaction, inbox_claim, inserted_count

pytestmark = pytest.mark.integration

SCHEMA = "bulk_test"
metadata = MetaData(schema=SCHEMA)
things = Table(
    "things",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("small", Integer),
    Column("flag", Boolean, nullable=False),
    Column("details", JSONB),
    Column("tags", ARRAY(Text), nullable=False),
    Column("blob", LargeBinary),
    Column("at", DateTime(timezone=True)),
    Column("touched_at", DateTime(timezone=True)),
)
notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("thing_id", Uuid, nullable=False),
    Column("text", Text, nullable=False),
)


@pytest.fixture
async def tables(engine: AsyncEngine) -> AsyncEngine:
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    return engine


def thing(name: str, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": uuid.uuid4(),
        "name": name,
        "count": 2**40,
        "small": None,
        "flag": True,
        "details": {"nested": [1, "two", None], "quote": 'a "b" \\ c'},
        "tags": ["plain", 'with "quotes"', "back\\slash", "comma,brace}"],
        "blob": b"\x00\x01\xff",
        "at": datetime(2026, 11, 29, 12, 0, tzinfo=UTC),
        "touched_at": None,
    }
    row.update(overrides)
    return row


async def write(engine: AsyncEngine, staged: StagedWrites) -> None:
    transaction = Transaction(engine)
    await transaction.begin()
    await transaction.write(staged)
    await transaction.commit()
    await transaction.close()


async def rows(engine: AsyncEngine, table: Table) -> list[dict[str, object]]:
    async with engine.connect() as conn:
        result = await conn.execute(select(table).order_by(table.c[table.c.keys()[0]]))
        return [dict(row) for row in result.mappings()]


async def test_inserted_values_of_every_kind_read_back_unchanged(tables: AsyncEngine) -> None:
    first, second = thing("first"), thing("second", details=None, tags=[], blob=None)
    staged = StagedWrites()
    staged.insert(things, [first, second])
    await write(tables, staged)
    stored = {row["name"]: row for row in await rows(tables, things)}
    assert stored["first"] == first
    assert stored["second"] == second


async def test_updates_and_inserts_of_several_tables_go_in_one_statement(
    tables: AsyncEngine,
) -> None:
    first, second = thing("first"), thing("second")
    setup = StagedWrites()
    setup.insert(things, [first, second])
    await write(tables, setup)

    staged = StagedWrites()
    staged.update(things, "id", {"id": first["id"], "count": 1, "tags": ["x"]})
    # A later update of the same row replaces the earlier one.
    staged.update(
        things,
        "id",
        {"id": second["id"], "count": 5, "details": None},
        computed=(("touched_at", "now()"), ("small", 'v."count" + 1')),
    )
    staged.update(
        things,
        "id",
        {"id": second["id"], "count": 7, "details": {"k": "v"}},
        computed=(("touched_at", "now()"), ("small", 'v."count" + 1')),
    )
    staged.insert(notes, [{"thing_id": first["id"], "text": "one"}])
    statement = staged.statement()
    assert statement is not None and statement[0].startswith("WITH ")
    await write(tables, staged)

    stored = {row["name"]: row for row in await rows(tables, things)}
    assert (stored["first"]["count"], stored["first"]["tags"]) == (1, ["x"])
    assert stored["first"]["name"] == "first"  # columns not staged are kept
    assert stored["first"]["touched_at"] is None
    assert (stored["second"]["count"], stored["second"]["small"]) == (7, 8)
    assert stored["second"]["details"] == {"k": "v"}
    assert stored["second"]["touched_at"] is not None
    assert [row["text"] for row in await rows(tables, notes)] == ["one"]


async def test_a_notifying_write_wakes_a_listener_only_once_committed(
    tables: AsyncEngine, migrated_database: str
) -> None:
    listener = await asyncpg.connect(migrated_database)
    heard: asyncio.Queue[tuple[str, str]] = asyncio.Queue()  # (channel, payload)
    await listener.add_listener(
        "bulk_test_channel",
        lambda _conn, _pid, channel, payload: heard.put_nowait((channel, payload)),
    )
    try:
        staged = StagedWrites(notify="bulk_test_channel")
        staged.insert(notes, [{"thing_id": uuid.uuid4(), "text": "x"}])
        transaction = Transaction(tables)
        await transaction.begin()
        await transaction.write(staged)
        # A notification sent after the write, and committed: one the write sent
        # before its commit would reach the listener first.
        await listener.execute("NOTIFY bulk_test_channel, 'sent later'")
        assert await asyncio.wait_for(heard.get(), 5) == ("bulk_test_channel", "sent later")
        await transaction.commit()
        await transaction.close()
        assert await asyncio.wait_for(heard.get(), 5) == ("bulk_test_channel", "")
    finally:
        await listener.close()


def test_a_channel_name_is_never_written_into_sql_unchecked() -> None:
    staged = StagedWrites(notify="x'); DROP TABLE y; --")
    staged.insert(notes, [{"thing_id": uuid.uuid4(), "text": "x"}])
    with pytest.raises(ValueError):
        staged.statement()


async def test_an_uncommitted_transaction_leaves_nothing_and_its_connection_is_reusable(
    tables: AsyncEngine, clean_tables: MessagingTables
) -> None:
    message_id = uuid.uuid4()
    transaction = Transaction(tables)
    status = await transaction.begin(
        inbox_claim(clean_tables.inbox, [(message_id, "test.message")])
    )
    assert inserted_count(status) == 1
    staged = StagedWrites()
    staged.insert(notes, [{"thing_id": uuid.uuid4(), "text": "never"}])
    await transaction.write(staged)
    await transaction.close()  # no commit
    assert await rows(tables, notes) == []
    # The claim went with the rollback: the message can be claimed again.
    again = Transaction(tables)
    status = await again.begin(inbox_claim(clean_tables.inbox, [(message_id, "test.message")]))
    assert inserted_count(status) == 1
    await again.commit()
    await again.close()
    duplicate = Transaction(tables)
    status = await duplicate.begin(inbox_claim(clean_tables.inbox, [(message_id, "test.message")]))
    assert inserted_count(status) == 0
    await duplicate.close()


def test_an_inbox_claim_accepts_only_uuids_and_catalog_like_types() -> None:
    inbox = define_inbox()
    with pytest.raises(ValueError):
        inbox_claim(inbox, [(uuid.uuid4(), "x'); DROP TABLE y; --")])
    with pytest.raises(ValueError):
        inbox_claim(inbox, [("not-a-uuid", "order.created")])  # type: ignore[list-item]


def define_inbox() -> Table:
    return Table("inbox", MetaData(schema="s"), Column("message_id", Uuid))


async def test_a_connection_killed_mid_transaction_is_not_handed_out_again(
    tables: AsyncEngine,
) -> None:
    transaction = Transaction(tables)
    await transaction.begin()
    backend = await transaction.raw.fetchval("SELECT pg_backend_pid()")
    async with tables.connect() as other:
        await other.execute(select(func.pg_terminate_backend(backend)))
    # How the loss shows depends on when asyncpg reads the server's goodbye.
    with pytest.raises(Exception):  # noqa: B017
        await transaction.raw.execute("SELECT 1")
    await transaction.close()
    # Every connection the pool hands out now works.
    for _ in range(5):
        fresh = Transaction(tables)
        await fresh.begin()
        assert await fresh.raw.fetchval("SELECT 1") == 1
        await fresh.close()


async def test_a_lazily_begun_transaction_that_only_writes_commits_its_one_statement(
    tables: AsyncEngine,
) -> None:
    transaction = Transaction(tables)
    await transaction.open()
    staged = StagedWrites()
    staged.insert(notes, [{"thing_id": uuid.uuid4(), "text": "alone"}])
    await transaction.write(staged)
    assert not transaction.connection.in_transaction()
    await transaction.commit()
    await transaction.close()
    assert [row["text"] for row in await rows(tables, notes)] == ["alone"]


async def test_a_lazily_begun_transaction_that_reads_first_keeps_nothing_uncommitted(
    tables: AsyncEngine,
) -> None:
    transaction = Transaction(tables)
    await transaction.open()
    await transaction.connection.execute(select(func.count()).select_from(notes))
    staged = StagedWrites()
    staged.insert(notes, [{"thing_id": uuid.uuid4(), "text": "never"}])
    await transaction.write(staged)
    await transaction.close()  # no commit
    assert await rows(tables, notes) == []

    kept = Transaction(tables)
    await kept.open()
    await kept.connection.execute(select(func.count()).select_from(notes))
    staged = StagedWrites()
    staged.insert(notes, [{"thing_id": uuid.uuid4(), "text": "kept"}])
    await kept.write(staged)
    await kept.commit()
    await kept.close()
    assert [row["text"] for row in await rows(tables, notes)] == ["kept"]


async def test_follow_up_writes_of_merged_staged_writes_run_once_after_the_statement(
    tables: AsyncEngine,
) -> None:
    first, second = thing("first"), thing("second")
    calls: list[list[str]] = []
    committed: list[str] = []

    async def note_each(raw: asyncpg.Connection, names: list[str]) -> list[Callable[[], None]]:
        calls.append(names)
        # Needs the rows the statement inserted (a subquery finds them).
        inserted = await raw.fetch(
            f"INSERT INTO {SCHEMA}.notes (thing_id, text) SELECT id, name FROM {SCHEMA}.things "
            "WHERE name = ANY($1::text[]) RETURNING text",
            names,
        )
        return [lambda: committed.extend(sorted(row["text"] for row in inserted))]

    # Two units of work of one batch, staged into the shared transaction's writes.
    one, other, shared = StagedWrites(), StagedWrites(), StagedWrites()
    one.insert(things, [first])
    one.follow_up(note_each, ["first"])
    other.insert(things, [second])
    other.follow_up(note_each, ["second"])
    shared.extend(one)
    shared.extend(other)

    transaction = Transaction(tables)
    await transaction.begin()
    after_commit = await transaction.write(shared)
    assert calls == [["first", "second"]]
    assert committed == []
    await transaction.commit()
    await transaction.close()
    for callback in after_commit:
        callback()
    assert committed == ["first", "second"]
    assert sorted(row["text"] for row in await rows(tables, notes)) == ["first", "second"]


async def test_a_lazily_begun_write_with_follow_ups_is_one_transaction(
    tables: AsyncEngine,
) -> None:
    async def fails(raw: asyncpg.Connection, items: list[str]) -> list[Callable[[], None]]:
        await raw.execute("SELECT 1 / 0")
        return []

    transaction = Transaction(tables)
    await transaction.open()  # nothing read: nothing begun yet
    staged = StagedWrites()
    staged.insert(things, [thing("orphan")])
    staged.follow_up(fails, ["x"])
    with pytest.raises(asyncpg.DivisionByZeroError):
        await transaction.write(staged)
    await transaction.close()
    assert await rows(tables, things) == []
