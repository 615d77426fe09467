"""The floor under the saga's throughput on this machine.

`make bench` says what the system does; this says what the machine allows. It
measures, against the local RabbitMQ and Postgres and with no service code at all,
the CPU of the three things a saga is made of:

- a message: published persistent with a publisher confirm (through the services'
  own publisher), delivered to a consumer and acknowledged;
- a consumer's transaction, as lean as it can be written with raw asyncpg: BEGIN
  with the inbox claim, the state row read `FOR UPDATE`, one statement writing the
  state and the outbox row, COMMIT, and the relay's outbox delete (batched);
- an HTTP request (an order's POST, a gateway call): httpx, as the payment service
  uses it (over aiohttp's transport), to the gateway
  simulator (in memory here), a FastAPI app on uvicorn like the services, doing
  next to nothing per request.

Each is measured over the client (this process), the server (RabbitMQ, every
Postgres process, the simulator) and the kernel's interrupt time, while several run
concurrently, as in a loaded system. Multiplied by how many of each an order takes,
that is the least CPU an order can cost; the machine's cores divided by it is a
ceiling on orders/s that no amount of tuning of the services' own code can pass.
All domain code, validation, logging and the rest come on top, so the real ceiling
is lower still.

Usage: `python -m oms_devtools.floor [--messages 4000] [--transactions 4000]
[--requests 2000] [--concurrency 8] [--batch 8] [--per-transaction 1] [--out FILE]`
(`make floor`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import uvloop
from aio_pika.abc import AbstractIncomingMessage
from httpx_aiohttp import AiohttpTransport

from oms_devtools import infra
from oms_devtools.procstat import KERNEL, ProcStat, machine_seconds, read_proc_stats
from oms_devtools.stack import free_port_block
from oms_runtime.db import libpq_url
from oms_runtime.messaging.broker import Broker, OutgoingMessage

# A typical envelope of the saga (order.created with two lines is ~600 bytes).
BODY = orjson.dumps({"message_id": str(uuid.uuid4()), "data": {"padding": "x" * 480}})


@dataclass(frozen=True)
class Shape:
    """How many messages (each published once and delivered once), consumer
    transactions and HTTP requests one order takes."""

    messages: int
    transactions: int
    requests: int
    what: str


SHAPES: Mapping[str, Shape] = {
    "this saga": Shape(
        16,
        15,
        3,
        "orchestrated: 11 commands and replies and 5 public events; a transaction "
        "per consumed message, per gateway answer and per POST; the POST and two "
        "gateway calls",
    ),
    "least the design allows": Shape(
        10,
        14,
        3,
        "the participants act on the public events (order.created, order.paid, "
        "order.shipped) instead of commands; the payment token still travels in a "
        "command; a transaction per consumed message, two per gateway operation, one "
        "per POST",
    ),
    "the issue's estimate": Shape(
        6, 6, 0, "~6 messages and ~6 transactions per order, HTTP not counted"
    ),
}


@dataclass(frozen=True)
class Cost:
    """CPU milliseconds per operation, by where they were spent."""

    client_ms: float
    server_ms: float
    kernel_ms: float

    @property
    def total_ms(self) -> float:
        return self.client_ms + self.server_ms + self.kernel_ms


def ceiling(
    message: Cost, transaction: Cost, request: Cost, shape: Shape, cores: int
) -> dict[str, float]:
    """The least CPU per order of `shape`, and the orders/s that `cores` allow at
    most (all of them busy with nothing else)."""
    per_order_ms = (
        shape.messages * message.total_ms
        + shape.transactions * transaction.total_ms
        + shape.requests * request.total_ms
    )
    return {
        "cpu_ms_per_order": per_order_ms,
        "max_orders_per_second": cores * 1000 / per_order_ms if per_order_ms else float("inf"),
    }


class CpuWindow:
    """CPU seconds of this process, of the processes `is_server` picks, and of the
    kernel's interrupt handling, between `__init__` and `cost`."""

    def __init__(self, is_server: Callable[[ProcStat], bool]) -> None:
        self._is_server = is_server
        self._start = self._read()

    def _read(self) -> tuple[float, float, float]:
        server = sum(stat.cpu_seconds for stat in read_proc_stats() if self._is_server(stat))
        return time.process_time(), server, machine_seconds()[KERNEL]

    def cost(self, operations: int) -> Cost:
        end = self._read()
        client, server, kernel = (
            max(0.0, after - before) * 1000 / operations
            for before, after in zip(self._start, end, strict=True)
        )
        return Cost(client, server, kernel)


# -- messages ------------------------------------------------------------------------


async def measure_messages(amqp_url: str, count: int, concurrency: int, batch: int) -> Cost:
    batches = max(1, count // (batch * concurrency))
    total = batches * batch * concurrency
    broker = Broker(amqp_url, "oms-floor")
    await broker.connect()
    try:
        publisher = await broker.publisher()
        channel = await broker.channel()
        await channel.set_qos(prefetch_count=max(32, 2 * batch))
        queue = await channel.declare_queue("oms.floor", durable=True)
        done = asyncio.Event()
        received = 0

        async def on_message(message: AbstractIncomingMessage) -> None:
            # Like the services: what is in hand is settled with one multiple ack.
            nonlocal received
            received += 1
            if received % batch == 0 or received == total:
                await message.ack(multiple=True)
            if received >= total:
                done.set()

        consumer_tag = await queue.consume(on_message)

        async def publish(batches: int) -> None:
            for _ in range(batches):
                await publisher.publish_many(
                    [
                        OutgoingMessage(
                            exchange="",
                            routing_key="oms.floor",
                            body=BODY,
                            message_id=str(uuid.uuid4()),
                            message_type="floor.probe",
                        )
                        for _ in range(batch)
                    ]
                )

        window = CpuWindow(lambda stat: stat.comm == "beam.smp")
        await asyncio.gather(*(publish(batches) for _ in range(concurrency)))
        await asyncio.wait_for(done.wait(), timeout=120)
        cost = window.cost(total)
        await queue.cancel(consumer_tag)
        await queue.delete(if_unused=False, if_empty=False)
        return cost
    finally:
        await broker.close()


# -- transactions --------------------------------------------------------------------

SCHEMA = """
CREATE TABLE floor_state (id uuid PRIMARY KEY, status text NOT NULL, version int NOT NULL);
CREATE TABLE floor_inbox (message_id uuid PRIMARY KEY, message_type text NOT NULL,
                          received_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE floor_outbox (message_id uuid PRIMARY KEY, body jsonb NOT NULL,
                           created_at timestamptz NOT NULL DEFAULT now());
"""
READ = (
    "SELECT id, status, version FROM floor_state WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE"
)
WRITE = """
WITH changed AS (
    UPDATE floor_state SET status = $2, version = version + 1 WHERE id = ANY($1::uuid[])
)
INSERT INTO floor_outbox (message_id, body) SELECT unnest($3::uuid[]), $4::jsonb
"""
DELETE_PUBLISHED = "DELETE FROM floor_outbox WHERE message_id = ANY($1::uuid[])"


async def measure_transactions(
    database_url: str,
    count: int,
    concurrency: int,
    batch: int,
    per_transaction: int = 1,
    rows: int = 1000,
) -> Cost:
    """CPU per message handled, `per_transaction` messages to a transaction (as a
    consumer's shared transaction takes whatever has arrived)."""
    dsn = libpq_url(database_url)
    setup = await asyncpg.connect(dsn)
    try:
        await setup.execute(SCHEMA)
        ids = [uuid.uuid4() for _ in range(rows)]
        await setup.executemany(
            "INSERT INTO floor_state VALUES ($1, 'pending', 0)", [(i,) for i in ids]
        )
    finally:
        await setup.close()
    body = BODY.decode()

    async def hops(connection: asyncpg.Connection, transactions: int) -> None:
        published: list[uuid.UUID] = []
        for _ in range(transactions):
            claimed = ", ".join(
                f"('{uuid.uuid4()}', 'floor.probe')" for _ in range(per_transaction)
            )
            await connection.execute(f"BEGIN; INSERT INTO floor_inbox VALUES {claimed}")
            state = await connection.fetch(READ, random.sample(ids, per_transaction))
            outgoing = [uuid.uuid4() for _ in state]
            await connection.execute(WRITE, [row["id"] for row in state], "next", outgoing, body)
            await connection.execute("COMMIT")
            published += outgoing
            if len(published) >= batch:
                await connection.execute(DELETE_PUBLISHED, published)
                published.clear()

    per_connection = max(1, count // (concurrency * per_transaction))
    # Connected before the window opens and closed after it closes, so every
    # backend's CPU is seen from start to end.
    connections = [await asyncpg.connect(dsn) for _ in range(concurrency)]
    try:
        window = CpuWindow(lambda stat: stat.comm == "postgres")
        await asyncio.gather(*(hops(connection, per_connection) for connection in connections))
        return window.cost(per_connection * concurrency * per_transaction)
    finally:
        for connection in connections:
            await connection.close()


# -- HTTP requests -------------------------------------------------------------------


async def measure_requests(count: int, concurrency: int) -> Cost:
    port = free_port_block(1)
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oms_gateway_simulator",
        "--port",
        str(port),
        env={**os.environ, "OMS_LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    try:
        # Over aiohttp's transport, as the payment service's gateway client.
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            transport=AiohttpTransport(limits=limits),
            timeout=10,
        ) as client:

            async def authorize() -> None:
                response = await client.post(
                    "/v1/authorizations",
                    json={
                        "amount": 1999,
                        "currency": "EUR",
                        "token": "tok_ok",
                        "reference": str(uuid.uuid4()),
                    },
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                )
                response.raise_for_status()
                response.json()

            await _until_up(authorize)
            rounds = max(1, count // concurrency)
            window = CpuWindow(lambda stat: stat.pid == server.pid)
            for _ in range(rounds):
                await asyncio.gather(*(authorize() for _ in range(concurrency)))
            return window.cost(rounds * concurrency)
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 10)


async def _until_up(request: Callable[[], Awaitable[None]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await request()
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


# -- report --------------------------------------------------------------------------


def report(message: Cost, transaction: Cost, request: Cost, cores: int) -> dict[str, Any]:
    return {
        "cores": cores,
        "message": {**asdict(message), "total_ms": message.total_ms},
        "transaction": {**asdict(transaction), "total_ms": transaction.total_ms},
        "request": {**asdict(request), "total_ms": request.total_ms},
        "shapes": {
            name: {**asdict(shape), **ceiling(message, transaction, request, shape, cores)}
            for name, shape in SHAPES.items()
        },
    }


def format_report(document: Mapping[str, Any]) -> str:
    settings = document.get("settings", {})
    lines = [
        f"CPU per operation on this machine ({document['cores']} cores), in ms"
        f" ({settings.get('concurrency', '?')} at once, {settings.get('batch', '?')} messages"
        f" per publish and per ack, {settings.get('per_transaction', '?')} per transaction):",
        f"  {'':<40}{'client':>8}{'server':>8}{'kernel':>8}{'total':>8}",
    ]
    for key, label in (
        ("message", "a message: publish, confirm, deliver, ack"),
        ("transaction", "a message's share of its transaction"),
        ("request", "an HTTP request (httpx to FastAPI)"),
    ):
        cost = document[key]
        lines.append(
            f"  {label:<40}{cost['client_ms']:>8.3f}{cost['server_ms']:>8.3f}"
            f"{cost['kernel_ms']:>8.3f}{cost['total_ms']:>8.3f}"
        )
    lines.append("Ceiling on completed orders/s with no service code at all:")
    for name, shape in document["shapes"].items():
        lines.append(
            f"  {name:<24}{shape['messages']:>3} messages {shape['transactions']:>3} transactions"
            f" {shape['requests']} requests -> {shape['cpu_ms_per_order']:5.1f} ms/order,"
            f" at most {shape['max_orders_per_second']:4.0f} orders/s"
        )
    return "\n".join(lines)


# The command line's counts: each at least 1, each recorded in the report.
_SETTINGS = ("messages", "transactions", "requests", "concurrency", "batch", "per_transaction")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m oms_devtools.floor",
        description="What one message and one transaction cost on this machine, and "
        "the orders/s ceiling that puts under the saga.",
    )
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--transactions", type=int, default=4000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--concurrency", type=int, default=8, help="publishers / connections at once"
    )
    parser.add_argument(
        "--batch", type=int, default=8, help="messages per publish, outbox rows per delete"
    )
    parser.add_argument(
        "--per-transaction",
        type=int,
        default=1,
        help="messages handled per consumer transaction (a batch sharing it)",
    )
    parser.add_argument("--out", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    for name in _SETTINGS:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


async def run(args: argparse.Namespace, database_url: str, amqp_url: str) -> dict[str, Any]:
    message = await measure_messages(amqp_url, args.messages, args.concurrency, args.batch)
    transaction = await measure_transactions(
        database_url, args.transactions, args.concurrency, args.batch, args.per_transaction
    )
    request = await measure_requests(args.requests, args.concurrency)
    document = report(message, transaction, request, os.cpu_count() or 1)
    document["settings"] = {name: getattr(args, name) for name in _SETTINGS}
    return document


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    name, database_url, amqp_url = infra.throwaway_urls("oms_floor")
    infra.create_vhost(name)
    try:
        asyncio.run(infra.recreate_database(database_url))
        # The services run on uvloop (uvicorn's default when installed): so does this.
        document = uvloop.run(run(args, database_url, amqp_url))
        # Named in the report, so whoever ran it can check it was dropped.
        document["scratch"] = {"database": name, "vhost": name}
    finally:
        asyncio.run(infra.drop_database(database_url))
        infra.delete_vhost(name)
    print(format_report(document))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
