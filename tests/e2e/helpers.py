"""What the end-to-end tests share beyond the HTTP client (oms_devtools.client): the
session's event recorder, customers of a test's own, orders taken to a given point,
gateway faults, a client that retries until its order is accepted, and a way to know
the services have handled every message before asserting that nothing changed."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import asyncpg
import httpx
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from oms_contracts import COMMANDS_EXCHANGE, EVENTS_EXCHANGE, Command, Envelope, Message
from oms_devtools.client import OmsClient, eventually

SERVICE_SCHEMAS = ("orders", "inventory", "payment", "shipping")


def a_customer(name: str) -> str:
    """A customer nobody else uses: `name` with a random tail."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


# -- events -------------------------------------------------------------------------


Match = Callable[[dict[str, Any]], bool]


def _anything(_: dict[str, Any]) -> bool:
    return True


@dataclass
class EventRecorder:
    """Every event the services publish during the session, as a subscriber sees it
    (tests/e2e/conftest.py binds it to the events exchange)."""

    events: list[tuple[str, bytes]] = field(default_factory=list)  # (routing key, body)
    # (routing key, correlation id, traceparent header) of each event
    traces: list[tuple[str, str | None, object]] = field(default_factory=list)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self.events.append((message.routing_key or "", message.body))
        self.traces.append(
            (
                message.routing_key or "",
                message.correlation_id,
                (message.headers or {}).get("traceparent"),
            )
        )

    def published(self, routing_key: str, match: Match = _anything) -> list[dict[str, Any]]:
        """The data of every `routing_key` event so far that `match`es, oldest first."""
        return [
            data
            for key, body in list(self.events)
            if key == routing_key and match(data := json.loads(body)["data"])
        ]

    def of_order(self, order_id: str) -> list[str]:
        """The routing keys of the events so far about `order_id`, oldest first."""
        return [
            key
            for key, body in list(self.events)
            if json.loads(body).get("data", {}).get("order_id") == order_id
        ]

    async def wait_for(
        self, routing_key: str, match: Match = _anything, count: int = 1, timeout: float = 10
    ) -> list[dict[str, Any]]:
        """Wait until at least `count` matching events were seen; returns all of them."""
        return await eventually(
            lambda: asyncio.sleep(0, self.published(routing_key, match)),
            lambda found: len(found) >= count,
            timeout,
            f"{count} {routing_key} event(s)",
        )


# -- publishing as a service does -----------------------------------------------------


Publish = Callable[[Message, str], Awaitable[None]]


@asynccontextmanager
async def publishing(amqp_url: str) -> AsyncIterator[Publish]:
    """Publish messages as the services do, to drive one of them directly: a command
    on `oms.commands`, an event on `oms.events`, in an envelope whose correlation id
    is the order named (`publish(message, order_id)`)."""
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        channel = await connection.channel()
        exchanges = {
            name: await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
            for name in (COMMANDS_EXCHANGE, EVENTS_EXCHANGE)
        }

        async def publish(message: Message, order_id: str) -> None:
            envelope = Envelope.wrap(message, correlation_id=order_id, causation_id=None)
            exchange = COMMANDS_EXCHANGE if isinstance(message, Command) else EVENTS_EXCHANGE
            await exchanges[exchange].publish(
                aio_pika.Message(
                    envelope.model_dump_json().encode(),
                    message_id=str(envelope.message_id),
                    correlation_id=order_id,
                    content_type="application/json",
                ),
                routing_key=message.routing_key,
            )

        yield publish
    finally:
        await connection.close()


# -- orders -------------------------------------------------------------------------


async def statuses(db: asyncpg.Connection, order_ids: Sequence[str]) -> dict[str, str]:
    """The status of each of these orders, straight from the order service's table."""
    rows = await db.fetch(
        "SELECT id::text, status FROM orders.orders WHERE id = ANY($1::uuid[])", list(order_ids)
    )
    return {row["id"]: row["status"] for row in rows}


async def fulfilling_order(
    oms: OmsClient, items: Iterable[tuple[str, int]], token: str = "tok_ok"
) -> tuple[str, dict[str, Any]]:
    """An order waiting for the warehouse: its id and its dispatch note."""
    order_id = (await oms.place(items, token))["id"]
    await oms.wait_for_order(order_id, "fulfilling")
    shipment = await oms.shipment_of(order_id)
    assert shipment is not None, f"order {order_id} is fulfilling without a dispatch note"
    return order_id, shipment


async def dispatch_and_wait_for_capture(oms: OmsClient, order_id: str) -> dict[str, Any]:
    """The warehouse dispatches the order's parcel; returns the payment once captured."""
    shipment = await oms.shipment_of(order_id)
    assert shipment is not None, f"order {order_id} has no dispatch note"
    dispatched = await oms.dispatch(shipment["id"])
    assert dispatched.status_code == 200, dispatched.text
    return await oms.wait_for_payment(order_id, "captured")


async def shipped_order(
    oms: OmsClient, items: Iterable[tuple[str, int]], token: str = "tok_ok"
) -> tuple[str, str]:
    """An order dispatched and its payment captured: (order id, shipment id)."""
    order_id, shipment = await fulfilling_order(oms, items, token)
    await dispatch_and_wait_for_capture(oms, order_id)
    return order_id, shipment["id"]


async def place_until_accepted(
    http: httpx.AsyncClient,
    urls: Sequence[str],
    headers: dict[str, str],
    body: dict[str, Any],
    give_up_after: float = 60,
) -> str:
    """What a well-behaved client does through outages: the same idempotency key,
    again (at any of the order service's `urls`), until its order is accepted.
    Returns the order's id; fails with the last answer after `give_up_after` s."""
    key = str(uuid.uuid4())
    deadline = time.monotonic() + give_up_after
    last: object = None
    while True:
        url = random.choice(urls)
        try:
            response = await http.post(
                f"{url}/orders", json=body, headers={**headers, "Idempotency-Key": key}, timeout=5
            )
            if response.status_code == 202:
                return str(response.json()["id"])
            last = f"{response.status_code} {response.text}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        if time.monotonic() > deadline:
            raise AssertionError(f"no order accepted in {give_up_after} s; last answer: {last}")
        await asyncio.sleep(0.3)


# -- stock -----------------------------------------------------------------------------

_STOCK_BOOKS = """
    SELECT s.sku, s.location, s.on_hand, s.reserved, s.damaged,
           coalesce(sum(m.on_hand_delta), 0) AS ledger_on_hand,
           coalesce(sum(m.reserved_delta), 0) AS ledger_reserved,
           coalesce(sum(m.damaged_delta), 0) AS ledger_damaged,
           coalesce(sum(m.on_hand_delta) FILTER (WHERE m.reason = 'initial'), 0) AS initial,
           coalesce(sum(m.on_hand_delta) FILTER (WHERE m.reason = 'restock'), 0) AS restocked,
           coalesce(sum(m.on_hand_delta) FILTER (WHERE m.reason = 'adjustment'), 0) AS adjusted,
           coalesce(sum(m.on_hand_delta) FILTER (WHERE m.reason = 'return'), 0) AS returned,
           coalesce(sum(m.damaged_delta) FILTER (WHERE m.reason = 'return_damaged'), 0)
               AS returned_damaged,
           coalesce(-sum(m.on_hand_delta) FILTER (WHERE m.reason = 'ship'), 0) AS shipped
    FROM inventory.stock s LEFT JOIN inventory.stock_movements m
        ON m.sku = s.sku AND m.location = s.location
    WHERE $1::text[] IS NULL OR s.sku = ANY($1::text[])
    GROUP BY s.sku, s.location, s.on_hand, s.reserved, s.damaged"""


async def stock_books_disagreements(
    db: asyncpg.Connection, skus: Sequence[str] | None = None
) -> list[str]:
    """Where, for a (SKU, location) of `skus` (None: all), the stock differs from its
    ledger, or on_hand + shipped differs from initial + restocked + adjusted + returned
    (resellable), or the damaged units are not the returned damaged ones."""
    found = []
    for row in await db.fetch(_STOCK_BOOKS, None if skus is None else list(skus)):
        where = f"{row['sku']} at {row['location']}"
        counters = (row["on_hand"], row["reserved"], row["damaged"])
        ledger = (row["ledger_on_hand"], row["ledger_reserved"], row["ledger_damaged"])
        if counters != ledger:
            found.append(f"{where}: on hand/reserved/damaged {counters}, ledger {ledger}")
        if not 0 <= row["reserved"] <= row["on_hand"]:
            found.append(f"{where}: {row['reserved']} reserved of {row['on_hand']} on hand")
        came_in = row["initial"] + row["restocked"] + row["adjusted"] + row["returned"]
        if row["on_hand"] + row["shipped"] != came_in:
            found.append(f"{where}: on hand + shipped != {came_in} that came in")
        if row["damaged"] != row["returned_damaged"]:
            found.append(
                f"{where}: {row['damaged']} damaged, {row['returned_damaged']} returned damaged"
            )
    return found


async def stock_books_agree(db: asyncpg.Connection, skus: Sequence[str]) -> None:
    """The books of `skus` agree (see stock_books_disagreements), and they have stock."""
    assert await db.fetchval(
        "SELECT count(*) FROM inventory.stock WHERE sku = ANY($1::text[])", list(skus)
    )
    assert await stock_books_disagreements(db, skus) == []


# -- the card gateway ------------------------------------------------------------------


@asynccontextmanager
async def gateway_faults(oms: OmsClient, **settings: Any) -> AsyncIterator[None]:
    """Run the block with the gateway simulator's faults set so (`latency_ms`,
    `failure_rate`, ...); what they were before is restored afterwards, whatever happens."""
    before = await oms.configure_gateway()
    await oms.configure_gateway(**settings)
    try:
        yield
    finally:
        await oms.configure_gateway(**{name: before[name] for name in settings})


# -- waiting until the services have handled everything ----------------------------


class Tap:
    """A private queue bound to everything on both exchanges: every message any service
    publishes (and any a test publishes) lands here too."""

    def __init__(self, queue: AbstractQueue) -> None:
        self.queue = queue
        self.seen: list[AbstractIncomingMessage] = []

    @classmethod
    async def on(cls, channel: aio_pika.abc.AbstractChannel) -> Tap:
        queue = await channel.declare_queue(exclusive=True)
        for name in (EVENTS_EXCHANGE, COMMANDS_EXCHANGE):
            exchange = await channel.declare_exchange(
                name, aio_pika.ExchangeType.TOPIC, durable=True
            )
            await queue.bind(exchange, "#")
        return cls(queue)

    async def take(self) -> list[AbstractIncomingMessage]:
        """What arrived since the last call (also kept in `seen`)."""
        arrived = []
        while (message := await self.queue.get(fail=False)) is not None:
            await message.ack()
            arrived.append(message)
        self.seen += arrived
        return arrived


def vhost_of(amqp_url: str) -> str:
    return unquote(urlsplit(amqp_url).path.lstrip("/")) or "/"


def _queue_depths(vhost: str) -> dict[str, tuple[int, int]]:
    """(ready, unacknowledged) messages of every queue of the vhost."""
    listed = subprocess.run(
        [
            "rabbitmqctl",
            "-q",
            "list_queues",
            "-p",
            vhost,
            "--no-table-headers",
            "name",
            "messages_ready",
            "messages_unacknowledged",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    depths = {}
    for line in listed.stdout.splitlines():
        name, ready, unacked = line.split("\t")
        depths[name] = (int(ready), int(unacked))
    return depths


def _is_service_queue(name: str) -> bool:
    return name.startswith("oms.")


async def dead_letters(amqp_url: str) -> dict[str, int]:
    """How many messages wait in each service's dead-letter queue."""
    depths = await asyncio.to_thread(_queue_depths, vhost_of(amqp_url))
    return {
        name: ready
        for name, (ready, _) in depths.items()
        if _is_service_queue(name) and name.endswith(".dead")
    }


async def _busy_service_queues(amqp_url: str) -> dict[str, tuple[int, int]]:
    """The service work and retry queues holding a message, waiting or in hand. (Dead
    letters stay where they are: they are nobody's work in hand.)"""
    depths = await asyncio.to_thread(_queue_depths, vhost_of(amqp_url))
    return {
        name: depth
        for name, depth in depths.items()
        if _is_service_queue(name) and not name.endswith(".dead") and depth != (0, 0)
    }


async def _unpublished(db: asyncpg.Connection) -> int:
    counts = [
        await db.fetchval(f"SELECT count(*) FROM {schema}.outbox") for schema in SERVICE_SCHEMAS
    ]
    return sum(counts)


async def wait_until_quiet(
    db: asyncpg.Connection, amqp_url: str, tap: Tap, timeout: float = 60
) -> None:
    """Wait until the services have handled every message: no service queue holds one
    (waiting, in hand, or waiting for a retry), then no outbox holds one, and the tap
    saw none published since the previous look. A handler's messages are in its
    outbox before it acknowledges what caused them, and on the tap once published, so
    nothing can slip between the looks."""
    deadline = time.monotonic() + timeout
    await tap.take()
    while True:
        busy = await _busy_service_queues(amqp_url)
        unpublished = await _unpublished(db)
        arrived = await tap.take()
        if not busy and unpublished == 0 and not arrived:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the services never went quiet; queues busy: {busy}, outbox rows: "
                f"{unpublished}, messages just published: {len(arrived)}"
            )
        await asyncio.sleep(0.1)
