"""The runtime's base repository and unit of work against a real Postgres: a tracked
aggregate's events become outbox rows with the commit, only changed rows are written
back, the messages of a batch see each other's rows through the row cache (also when
they look them up by another unique column), and what is only looked at is never
written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from oms_contracts import Envelope, Message
from oms_contracts.order import OrderCompleted
from oms_runtime.messaging.events import EventMap
from oms_runtime.messaging.tables import define_messaging_tables
from oms_runtime.messaging.unit_of_work import SharedTransaction, UnitOfWork
from oms_runtime.repository import Repository, Row

pytestmark = pytest.mark.integration

SCHEMA = "repository_test"
metadata = MetaData(schema=SCHEMA)
TABLES = define_messaging_tables(metadata)
counters = Table(
    "counters",
    metadata,
    Column("name", Text, primary_key=True),
    Column("count", Integer, nullable=False),
    Column("label", Text, unique=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


@dataclass(frozen=True)
class Counted:
    name: str
    count: int


@dataclass
class Counter:
    name: str
    count: int = 0
    label: str | None = None
    # Stands for a counter nobody created (never stored).
    phantom: bool = False
    events: list[Counted] = field(default_factory=list)

    def add(self, n: int) -> None:
        self.count += n
        self.events.append(Counted(self.name, self.count))


class CounterEvents(EventMap[Counter, Any]):
    def messages(self, event: Counted, source: Counter) -> Sequence[Message]:
        return [OrderCompleted(order_id=f"{event.name}:{event.count}")]

    def correlation_id(self, source: Counter) -> str:
        return source.name


class Counters(Repository[Counter]):
    table = counters
    key = "name"

    async def get(self, name: str, *, for_update: bool = False) -> Counter | None:
        return await self._get(name, for_update=for_update)

    async def get_by_label(self, label: str, *, for_update: bool = False) -> Counter | None:
        statement = select(counters).where(counters.c.label == label)
        if for_update:
            statement = statement.with_for_update()
        return await self._get_by("label", label, statement, {}, for_update=for_update)

    def add(self, counter: Counter) -> None:
        self._add(counter)

    def _key_of(self, counter: Counter) -> str:
        return counter.name

    def _exists(self, counter: Counter) -> bool:
        return not counter.phantom

    def _to_row(self, counter: Counter) -> Row:
        return {"name": counter.name, "count": counter.count, "label": counter.label}

    def _from_row(self, row: Mapping[str, Any]) -> Counter:
        return Counter(row["name"], row["count"], row["label"])


class CounterUnitOfWork(UnitOfWork):
    counters: Counters

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.counters = Counters(self)
        return self


@pytest.fixture
async def tables(engine: AsyncEngine) -> AsyncEngine:
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    return engine


def unit_of_work(engine: AsyncEngine, **kwargs: Any) -> CounterUnitOfWork:
    return CounterUnitOfWork(engine, TABLES, events=CounterEvents(), **kwargs)


async def stored(engine: AsyncEngine) -> dict[str, tuple[int, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(select(counters))
        return {row.name: (row.count, row.updated_at) for row in result}


async def outbox(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            select(TABLES.outbox.c.correlation_id, TABLES.outbox.c.body).order_by(
                TABLES.outbox.c.id
            )
        )
        return [
            (row.correlation_id, Envelope.model_validate_json(row.body).data["order_id"])
            for row in result
        ]


async def test_an_added_aggregate_and_the_messages_of_its_events_are_written_on_commit(
    tables: AsyncEngine,
) -> None:
    async with unit_of_work(tables) as uow:
        counter = Counter("a")
        counter.add(2)
        uow.counters.add(counter)
        await uow.commit()

    assert {name: count for name, (count, _) in (await stored(tables)).items()} == {"a": 2}
    assert await outbox(tables) == [("a", "a:2")]


async def test_nothing_is_written_without_a_commit(tables: AsyncEngine) -> None:
    async with unit_of_work(tables) as uow:
        counter = Counter("a")
        counter.add(1)
        uow.counters.add(counter)

    assert await stored(tables) == {}
    assert await outbox(tables) == []


async def test_an_aggregate_read_for_update_is_written_back_only_if_it_changed(
    tables: AsyncEngine,
) -> None:
    async with unit_of_work(tables) as uow:
        uow.counters.add(Counter("same", 1))
        uow.counters.add(Counter("changed", 1))
        await uow.commit()
    before = await stored(tables)

    async with unit_of_work(tables) as uow:
        same = await uow.counters.get("same", for_update=True)
        changed = await uow.counters.get("changed", for_update=True)
        assert same is not None and changed is not None
        changed.add(4)
        await uow.commit()

    after = await stored(tables)
    assert after["same"] == before["same"]  # not even its modification time moved
    assert after["changed"][0] == 5 and after["changed"][1] > before["changed"][1]


async def test_an_aggregate_only_looked_at_is_neither_written_nor_announced(
    tables: AsyncEngine,
) -> None:
    async with unit_of_work(tables) as uow:
        uow.counters.add(Counter("a", 1))
        await uow.commit()

    async with unit_of_work(tables) as uow:
        looked_at = await uow.counters.get("a")
        assert looked_at is not None
        looked_at.add(10)
        await uow.commit()

    assert (await stored(tables))["a"][0] == 1
    assert await outbox(tables) == []


async def test_an_aggregate_that_stands_for_nothing_announces_but_is_never_stored(
    tables: AsyncEngine,
) -> None:
    async with unit_of_work(tables) as uow:
        phantom = Counter("ghost", phantom=True)
        phantom.add(1)
        uow.counters.add(phantom)
        await uow.commit()

    assert await stored(tables) == {}
    assert await outbox(tables) == [("ghost", "ghost:1")]


async def test_the_messages_of_a_batch_see_each_others_rows_before_the_commit(
    tables: AsyncEngine,
) -> None:
    async with unit_of_work(tables) as uow:
        uow.counters.add(Counter("a", 1))
        await uow.commit()

    incoming = {n: Envelope.wrap(OrderCompleted(order_id=f"message {n}")) for n in (2, 3)}
    async with SharedTransaction(tables, TABLES) as shared:
        assert await shared.claim(list(incoming.values())) == {
            envelope.message_id for envelope in incoming.values()
        }
        await Counters.preload(shared, ["a", "missing"])
        for n, envelope in incoming.items():
            async with unit_of_work(tables, shared=shared, inbox_message=envelope) as uow:
                counter = await uow.counters.get("a", for_update=True)
                assert counter is not None
                counter.add(n)
                assert await uow.counters.get("missing", for_update=True) is None
                await uow.commit()
        await shared.commit()

    assert (await stored(tables))["a"][0] == 6
    assert await outbox(tables) == [("a", "a:3"), ("a", "a:6")]


async def test_an_aggregate_read_twice_in_one_unit_of_work_is_the_same_object(
    tables: AsyncEngine,
) -> None:
    async with unit_of_work(tables) as uow:
        uow.counters.add(Counter("a", 1))
        await uow.commit()

    async with unit_of_work(tables) as uow:
        first = await uow.counters.get("a", for_update=True)
        second = await uow.counters.get("a", for_update=True)
        assert first is second
        assert first is not None
        first.add(1)
        await uow.commit()

    assert (await stored(tables))["a"][0] == 2


async def test_a_batch_finds_by_a_unique_column_what_its_loader_locked_or_an_earlier_message_added(
    tables: AsyncEngine,
) -> None:
    async with unit_of_work(tables) as uow:
        uow.counters.add(Counter("a", 1, label="first"))
        await uow.commit()
    statements: list[str] = []

    def sent(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    event.listen(tables.sync_engine, "before_cursor_execute", sent)
    other = create_async_engine(tables.url)
    try:
        async with SharedTransaction(tables, TABLES) as shared:
            await shared.begin()
            await Counters.preload_by(shared, "label", ["first", "second"])
            # Locked by the batch: another transaction cannot take it meanwhile.
            async with other.connect() as connection:
                await connection.exec_driver_sql("SET lock_timeout = 100")
                with pytest.raises(Exception, match="lock"):
                    await connection.exec_driver_sql(
                        f"SELECT 1 FROM {SCHEMA}.counters WHERE label = 'first' FOR UPDATE"
                    )
            statements.clear()
            async with unit_of_work(tables, shared=shared) as uow:
                first = await uow.counters.get_by_label("first", for_update=True)
                assert first is not None and first.name == "a"
                first.add(1)
                assert await uow.counters.get_by_label("second", for_update=True) is None
                uow.counters.add(Counter("b", 5, label="second"))
                await uow.commit()
            async with unit_of_work(tables, shared=shared) as uow:
                second = await uow.counters.get_by_label("second", for_update=True)
                assert second is not None and second.name == "b"
                second.add(2)
                again = await uow.counters.get_by_label("first", for_update=True)
                assert again is not None and again.count == 2
                await uow.commit()
            # Every look-up was answered from what the loader read or the batch wrote.
            assert statements == []
            await shared.commit()
    finally:
        event.remove(tables.sync_engine, "before_cursor_execute", sent)
        await other.dispose()

    assert {name: count for name, (count, _) in (await stored(tables)).items()} == {"a": 2, "b": 7}
