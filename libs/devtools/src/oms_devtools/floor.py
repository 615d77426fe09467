"""The floor under the saga's throughput on this machine.

`make bench` says what the system does; this says what the machine allows. It
measures, against the local RabbitMQ and Postgres and with no service code at all,
the CPU of the two primitives every saga step is made of:

- a message: published persistent with a publisher confirm (through the services'
  own publisher), delivered to a consumer and acknowledged;
- a consumer's transaction, as lean as it can be written with raw asyncpg: BEGIN
  with the inbox claim, the state row read `FOR UPDATE`, one statement writing the
  state and the outbox row, COMMIT, and the relay's outbox delete (batched).

Each is measured over the client (this process), the server (RabbitMQ or every
Postgres process) and the kernel's interrupt time, while several run concurrently,
as in a loaded system. Multiplied by how many of each an order takes, that is the
least CPU an order can cost; the machine's cores divided by it is a ceiling on
orders/s that no amount of tuning of the services' own code can pass. HTTP (the
POST, the gateway calls) and all domain code come on top, so the real ceiling is
lower still.

Usage: `python -m oms_devtools.floor [--messages 4000] [--transactions 4000]
[--concurrency 8] [--out FILE]` (`make floor`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aio_pika.abc import AbstractIncomingMessage

from oms_devtools import infra
from oms_devtools.procstat import KERNEL, machine_seconds, read_proc_stats
from oms_runtime.db import libpq_url
from oms_runtime.messaging.broker import Broker, OutgoingMessage

# A typical envelope of the saga (order.created with two lines is ~600 bytes).
BODY = orjson.dumps({"message_id": str(uuid.uuid4()), "data": {"padding": "x" * 480}})


@dataclass(frozen=True)
class Shape:
    """How many messages (each published once and delivered once) and consumer
    transactions one order takes."""

    messages: int
    transactions: int
    what: str


SHAPES: Mapping[str, Shape] = {
    "this saga": Shape(
        16,
        15,
        "orchestrated: 11 commands and replies and 5 public events; a transaction "
        "per consumed message, per gateway answer and per POST",
    ),
    "least the design allows": Shape(
        10,
        12,
        "the participants act on the public events (order.created, order.paid, "
        "order.shipped) instead of commands; the payment token still travels in a "
        "command; two transactions per gateway operation",
    ),
    "the issue's estimate": Shape(6, 6, "~6 messages and ~6 transactions per order"),
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


def ceiling(message: Cost, transaction: Cost, shape: Shape, cores: int) -> dict[str, float]:
    """The least CPU per order of `shape`, and the orders/s that `cores` allow at
    most (all of them busy with nothing else)."""
    per_order_ms = shape.messages * message.total_ms + shape.transactions * transaction.total_ms
    return {
        "cpu_ms_per_order": per_order_ms,
        "max_orders_per_second": cores * 1000 / per_order_ms if per_order_ms else float("inf"),
    }


class CpuWindow:
    """CPU seconds of this process, of the processes `is_server` picks, and of the
    kernel's interrupt handling, between `__init__` and `cost`."""

    def __init__(self, is_server: Callable[[str], bool]) -> None:
        self._is_server = is_server
        self._start = self._read()

    def _read(self) -> tuple[float, float, float]:
        server = sum(stat.cpu_seconds for stat in read_proc_stats() if self._is_server(stat.comm))
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
    broker = Broker(amqp_url, "oms-floor")
    await broker.connect()
    try:
        publisher = await broker.publisher()
        channel = await broker.channel()
        await channel.set_qos(prefetch_count=32)
        queue = await channel.declare_queue("oms.floor", durable=True)
        done = asyncio.Event()
        received = 0

        async def on_message(message: AbstractIncomingMessage) -> None:
            # Like the services: what is in hand is settled with one multiple ack.
            nonlocal received
            received += 1
            if received % 8 == 0 or received == count:
                await message.ack(multiple=True)
            if received >= count:
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

        batches = max(1, count // (batch * concurrency))
        count = batches * batch * concurrency
        window = CpuWindow(lambda comm: comm == "beam.smp")
        await asyncio.gather(*(publish(batches) for _ in range(concurrency)))
        await asyncio.wait_for(done.wait(), timeout=120)
        cost = window.cost(count)
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
        window = CpuWindow(lambda comm: comm == "postgres")
        await asyncio.gather(*(hops(connection, per_connection) for connection in connections))
        return window.cost(per_connection * concurrency * per_transaction)
    finally:
        for connection in connections:
            await connection.close()


# -- report --------------------------------------------------------------------------


def report(message: Cost, transaction: Cost, cores: int) -> dict[str, Any]:
    return {
        "cores": cores,
        "message": {**asdict(message), "total_ms": message.total_ms},
        "transaction": {**asdict(transaction), "total_ms": transaction.total_ms},
        "shapes": {
            name: {**asdict(shape), **ceiling(message, transaction, shape, cores)}
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
    ):
        cost = document[key]
        lines.append(
            f"  {label:<40}{cost['client_ms']:>8.3f}{cost['server_ms']:>8.3f}"
            f"{cost['kernel_ms']:>8.3f}{cost['total_ms']:>8.3f}"
        )
    lines.append("Ceiling on completed orders/s with no service code at all (HTTP not counted):")
    for name, shape in document["shapes"].items():
        lines.append(
            f"  {name:<26}{shape['messages']:>3} messages {shape['transactions']:>3} transactions"
            f"  -> {shape['cpu_ms_per_order']:6.1f} ms/order, at most"
            f" {shape['max_orders_per_second']:6.0f} orders/s"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m oms_devtools.floor",
        description="What one message and one transaction cost on this machine, and "
        "the orders/s ceiling that puts under the saga.",
    )
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--transactions", type=int, default=4000)
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
    for name in ("messages", "transactions", "concurrency", "batch", "per_transaction"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


async def run(args: argparse.Namespace, database_url: str, amqp_url: str) -> dict[str, Any]:
    message = await measure_messages(amqp_url, args.messages, args.concurrency, args.batch)
    transaction = await measure_transactions(
        database_url, args.transactions, args.concurrency, args.batch, args.per_transaction
    )
    document = report(message, transaction, os.cpu_count() or 1)
    document["settings"] = {
        name: getattr(args, name)
        for name in ("messages", "transactions", "concurrency", "batch", "per_transaction")
    }
    return document


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    run_id = uuid.uuid4().hex[:8]
    database_base = os.environ.get("OMS_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")
    amqp_base = os.environ.get("OMS_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
    name = f"oms_floor_{run_id}"
    database_url = f"{database_base.rstrip('/')}/{name}"
    amqp_url = f"{amqp_base.rstrip('/')}/{name}"
    infra.create_vhost(name)
    try:
        asyncio.run(infra.recreate_database(database_url))
        document = asyncio.run(run(args, database_url, amqp_url))
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
