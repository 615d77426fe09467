"""The fault-injecting proxy against a small TCP server of the test's own: bytes go
through unchanged, and each fault does to the connections what it promises."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

from oms_devtools.faultproxy import Direction, FaultProxy

DEADLINE = 5.0


@dataclass
class Upstream:
    """Echoes what it receives and keeps a copy; closes when asked to."""

    port: int = 0
    received: bytearray = field(default_factory=bytearray)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    connections: int = 0
    server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while data := await reader.read(65536):
                self.received += data
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def wait_received(self, size: int) -> None:
        deadline = time.monotonic() + DEADLINE
        while len(self.received) < size:
            assert time.monotonic() < deadline, f"upstream got {len(self.received)} of {size}"
            await asyncio.sleep(0.01)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    echo = Upstream()
    echo.server = await asyncio.start_server(echo.handle, "127.0.0.1", 0)
    echo.port = echo.server.sockets[0].getsockname()[1]
    yield echo
    echo.server.close()
    for writer in echo.writers:
        writer.close()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    running = FaultProxy("127.0.0.1", upstream.port, name="test").start()
    yield running
    running.close()


async def connect(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(proxy.host, proxy.port)


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> bytes:
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), DEADLINE)


async def test_bytes_go_through_unchanged_both_ways(proxy: FaultProxy) -> None:
    reader, writer = await connect(proxy)
    assert await exchange(reader, writer, b"hello") == b"hello"
    writer.close()


async def test_a_large_transfer_arrives_whole_and_in_order(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    payload = bytes(range(256)) * 20_000  # 5 MB: more than any buffer on the way
    reader, writer = await connect(proxy)
    writer.write(payload)
    echoed = await asyncio.wait_for(reader.readexactly(len(payload)), 30)
    assert echoed == payload
    assert bytes(upstream.received) == payload
    writer.close()


async def test_a_server_closing_its_end_closes_the_clients(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    reader, writer = await connect(proxy)
    await exchange(reader, writer, b"ping")
    upstream.writers[0].close()
    assert await asyncio.wait_for(reader.read(), DEADLINE) == b""
    writer.close()


async def test_a_cut_resets_open_connections_and_refuses_new_ones_until_restored(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    reader, writer = await connect(proxy)
    await exchange(reader, writer, b"before")

    proxy.cut()
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await exchange(reader, writer, b"during")
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        # Accepted and reset at once: the reset may even beat the connect's return.
        new_reader, new_writer = await connect(proxy)
        await exchange(new_reader, new_writer, b"new")
    assert bytes(upstream.received) == b"before"

    proxy.restore()
    reader, writer = await connect(proxy)
    assert await exchange(reader, writer, b"after") == b"after"
    writer.close()


async def test_a_partition_holds_the_bytes_and_closes_nothing_until_it_heals(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    reader, writer = await connect(proxy)
    await exchange(reader, writer, b"one")

    proxy.blackhole()
    writer.write(b"two")
    fresh_reader, fresh_writer = await connect(proxy)  # accepted, like a SYN answered
    fresh_writer.write(b"three")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(3), 0.5)
    assert bytes(upstream.received) == b"one"
    assert proxy.connection_count() == 2

    proxy.restore()
    assert await asyncio.wait_for(reader.readexactly(3), DEADLINE) == b"two"
    assert await asyncio.wait_for(fresh_reader.readexactly(5), DEADLINE) == b"three"
    writer.close()
    fresh_writer.close()


async def test_a_one_way_partition_lets_requests_arrive_and_loses_the_answers(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    reader, writer = await connect(proxy)
    proxy.blackhole(Direction.DOWNSTREAM)
    writer.write(b"request")
    await upstream.wait_received(len(b"request"))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(7), 0.5)

    proxy.reset_connections()  # the answers held back are dropped with the connection
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(7), DEADLINE)
    proxy.restore()
    writer.close()


async def test_a_partition_towards_the_server_keeps_what_the_client_sent_from_it(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    reader, writer = await connect(proxy)
    await exchange(reader, writer, b"seen")
    proxy.blackhole(Direction.UPSTREAM)
    writer.write(b"held")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(4), 0.5)
    assert bytes(upstream.received) == b"seen"

    # The client dies while its bytes are held: a reset drops them for good.
    writer.transport.abort()
    proxy.reset_connections()
    proxy.restore()
    reader, writer = await connect(proxy)
    assert await exchange(reader, writer, b"next") == b"next"
    assert bytes(upstream.received) == b"seennext"
    writer.close()


async def test_a_delay_makes_every_round_trip_at_least_that_much_slower(
    proxy: FaultProxy,
) -> None:
    reader, writer = await connect(proxy)
    proxy.delay(0.2)
    started = time.monotonic()
    for chunk in (b"a", b"b", b"c"):
        writer.write(chunk)
    assert await asyncio.wait_for(reader.readexactly(3), DEADLINE) == b"abc"
    # Each way is delayed: at least 0.4 s for the round trip, order kept.
    assert time.monotonic() - started >= 0.4

    proxy.restore()
    started = time.monotonic()
    assert await exchange(reader, writer, b"d") == b"d"
    assert time.monotonic() - started < 0.4
    writer.close()


def test_rewrite_points_a_url_at_the_proxy_and_keeps_the_rest(proxy: FaultProxy) -> None:
    assert proxy.rewrite("postgresql://postgres:pw@db.example:5432/oms?x=1") == (
        f"postgresql://postgres:pw@127.0.0.1:{proxy.port}/oms?x=1"
    )
    assert proxy.rewrite("amqp://127.0.0.1/vhost") == f"amqp://127.0.0.1:{proxy.port}/vhost"


@pytest.mark.parametrize(
    ("url", "upstream", "through_the_proxy"),
    [
        (
            "postgresql+asyncpg://postgres@db.example:6543/oms",
            ("db.example", 6543),
            "postgresql+asyncpg://postgres@127.0.0.1:{port}/oms",
        ),
        ("postgresql://127.0.0.1/oms", ("127.0.0.1", 5432), "postgresql://127.0.0.1:{port}/oms"),
        ("amqp://u:p@mq.example/v", ("mq.example", 5672), "amqp://u:p@127.0.0.1:{port}/v"),
        ("amqps://u:p@mq.example/v", ("mq.example", 5671), "amqps://u:p@127.0.0.1:{port}/v"),
    ],
)
def test_a_proxy_in_front_of_a_url_forwards_to_its_server_and_rewrites_it(
    url: str, upstream: tuple[str, int], through_the_proxy: str
) -> None:
    proxy = FaultProxy.in_front_of(url).start()
    try:
        assert proxy.upstream == upstream
        assert proxy.rewrite(url) == through_the_proxy.format(port=proxy.port)
    finally:
        proxy.close()
