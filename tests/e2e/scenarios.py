"""Fault scenarios and probes the end-to-end tests share (the main stack's and the
HTTPS / quorum-queue stack's)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable
from typing import Any

import aio_pika
import asyncpg

from oms_contracts import COMMANDS_EXCHANGE, Envelope
from oms_contracts import inventory as inventory_msgs
from oms_devtools.client import OmsClient, eventually, order_body
from oms_devtools.faultproxy import Direction, FaultProxy
from oms_devtools.stack import Stack

from .helpers import place_until_accepted

SETTLED = {"fulfilling", "rejected", "cancelled"}
# Orders that may wait for inventory or the broker longer than the suite's short
# reservation deadline without being compensated.
PATIENT = {
    "OMS_DEADLINE_RESERVATION_SECONDS": "300",
    "OMS_DEADLINE_PAYMENT_SECONDS": "300",
    "OMS_DEADLINE_SHIPMENT_SECONDS": "300",
}


def placing(oms: OmsClient, sku: str, customer: str) -> Awaitable[str]:
    """One order of `sku`, placed by a client that retries through outages."""
    return place_until_accepted(
        oms.http, [oms.urls["order"]], oms.as_customer(customer), order_body([(sku, 1)])
    )


async def waiting_in_the_outbox(db: asyncpg.Connection, order_id: str) -> int:
    """Messages about `order_id` the order service committed and has not handed over."""
    count: int = await db.fetchval(
        "SELECT count(*) FROM orders.outbox WHERE correlation_id = $1", order_id
    )
    return count


async def held_in_the_outbox(oms: OmsClient, db: asyncpg.Connection, sku: str) -> str:
    """An order of `sku` taken while its messages cannot leave: accepted, and waiting
    in the order service's outbox. Returns its id."""
    accepted = await oms.place_order([(sku, 1)])
    assert accepted.status_code == 202
    order_id = str(accepted.json()["id"])
    assert await waiting_in_the_outbox(db, order_id) > 0
    return order_id


async def sent_on(oms: OmsClient, db: asyncpg.Connection, order_id: str) -> None:
    """What the outbox held for the order went out: the saga went on to `fulfilling`
    and nothing is left waiting."""
    await oms.wait_for_order(order_id, "fulfilling", timeout=30)
    await eventually(
        lambda: waiting_in_the_outbox(db, order_id), lambda n: n == 0, 10, "an empty outbox"
    )


def log_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines


_SAMPLE = re.compile(r"^(?P<name>\w+)\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


async def metric(oms: OmsClient, url: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` a process exports with (at least) `labels`."""
    text = (await oms.http.get(f"{url}/metrics")).text
    total = 0.0
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match["name"] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.items() <= found.items():
            total += float(match["value"])
    return total


async def consumed(oms: OmsClient, stack: Stack, service: str, **labels: str) -> float:
    """Messages handled by every running replica of `service` (their own counters)."""
    return sum(
        [
            await metric(oms, stack.url(name), "oms_messages_consumed_total", **labels)
            for name in stack.replica_names(service)
        ]
    )


async def readiness(oms: OmsClient, service: str) -> tuple[int, dict[str, bool]]:
    response = await oms.http.get(f"{oms.urls[service]}/readyz", timeout=10)
    return response.status_code, response.json().get("checks", {})


async def restock_whose_ack_is_lost(
    oms: OmsClient,
    stack: Stack,
    db: asyncpg.Connection,
    broker_proxy: FaultProxy,
    amqp_url: str,
) -> None:
    """Inventory commits a delivery and is killed before its ack reaches the broker."""
    product = await oms.create_product(on_hand=1)
    command = inventory_msgs.Restock(
        sku=product["sku"], quantity=5, reference=f"ASN-{uuid.uuid4()}"
    )
    envelope = Envelope.wrap(command)
    # Deliveries still reach the services; nothing they send reaches the broker.
    broker_proxy.blackhole(Direction.UPSTREAM)
    connection = await aio_pika.connect(amqp_url)  # the test's own, direct
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(COMMANDS_EXCHANGE)
        await exchange.publish(
            aio_pika.Message(
                envelope.model_dump_json().encode(), message_id=str(envelope.message_id)
            ),
            routing_key=command.routing_key,
        )
    await eventually(
        lambda: db.fetchval(
            "SELECT count(*) FROM inventory.inbox WHERE message_id = $1", envelope.message_id
        ),
        lambda n: n == 1,
        20,
        "the restock to be committed",
    )
    for name in stack.replica_names("inventory"):
        stack.kill(name)
    broker_proxy.reset_connections()  # the acks held back die with the connections
    broker_proxy.restore()
    await stack.start_service("inventory")

    await eventually(
        lambda: consumed(oms, stack, "inventory", type="inventory.restock", outcome="duplicate"),
        lambda n: n >= 1,
        20,
        "the redelivered restock to be recognised",
    )
    assert (await oms.product(product["sku"]))["on_hand"] == 6
    assert (
        await db.fetchval(
            "SELECT count(*) FROM inventory.stock_movements WHERE sku = $1 AND reason = 'restock'",
            product["sku"],
        )
        == 1
    )
