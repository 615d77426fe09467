"""Chaos under load: every process is killed with SIGKILL in turn (each replica of
each service, each standalone outbox relay, the gateway simulator; the order service
carries the saga's timers), the broker goes away once and is cut off by a network
partition once, and then every process of the stack is killed at the same moment,
twice. Two replicas of every service compete for the work, and clients retry with
their idempotency keys. Afterwards every order has ended with nothing left to an
operator, and nothing was lost, doubled or oversold; the gateway, which keeps its
ledger in Postgres, captured exactly what shipped.

The broker's outages are made with the suite's fault proxy: RabbitMQ itself keeps
running for everyone else on the machine."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest

from oms_contracts import EVENTS_EXCHANGE
from oms_devtools.client import ADDRESS, OmsClient, eventually
from oms_devtools.faultproxy import FaultProxy
from oms_devtools.stack import GATEWAY, SERVICES, Stack, free_port_block

from .helpers import place_until_accepted

# It starts the second replica of every service itself when the stack has one, so
# the replica pass would only run it again: it runs once.
pytestmark = [pytest.mark.e2e, pytest.mark.single_pass]

TERMINAL = {"completed", "rejected", "cancelled"}


async def test_killing_every_process_alone_and_all_at_once_and_losing_the_broker_loses_nothing(
    oms: OmsClient,
    stack: Stack,
    db: asyncpg.Connection,
    test_amqp_url: str,
    broker_proxy: FaultProxy,
) -> None:
    # Three SKUs at three locations, so that orders of two of them ship in two
    # parcels, each dispatched, committed and captured on its own.
    locations = ["default", *[(await oms.create_location())["code"] for _ in range(2)]]
    skus = [
        (await oms.create_product(stock={location: 10_000}, unit_price=700))["sku"]
        for location in locations
    ]
    empty = (await oms.create_product(on_hand=0))["sku"]

    # A subscriber with a durable queue: it must see every event despite the chaos.
    queue_name = f"chaos-{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect_robust(test_amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )
    subscriber = await channel.declare_queue(queue_name, durable=True)
    await subscriber.bind(exchange, "order.*")

    # The topology: shipping dispatches at once; the order service re-sends an
    # unanswered compensation or capture for about a minute before it asks an
    # operator (the suite's usual three tries in three seconds are shorter than a
    # gateway simulator killed twice takes to come back on this busy machine; the
    # defaults give minutes); two replicas of every service (the suite's own second
    # ones with OMS_E2E_REPLICAS=2, else started here); a standalone outbox relay per
    # service next to the in-process ones.
    settings = {
        "shipping": {"OMS_AUTO_DISPATCH": "true"},
        "order": {"OMS_DEADLINE_RETRY_SECONDS": "2", "OMS_DEADLINE_MAX_ATTEMPTS": "6"},
    }
    for service, env in settings.items():
        await stack.restart(service, env)
    extra = [] if stack.replicas >= 2 else [f"{service}:2" for service in SERVICES]
    extra_port = free_port_block(len(SERVICES))
    for index, name in enumerate(extra):
        stack.start(name, settings.get(name.split(":")[0], {}), port=extra_port + index)
    relays = [f"{service}:relay" for service in SERVICES]
    for name in relays:
        stack.start(name, role="relay")
    await stack.wait_ready(list(SERVICES))
    order_urls = [stack.url("order"), stack.url("order:2")]

    placed: list[str] = []
    headers = oms.as_customer("chaos")
    chaos_over = asyncio.Event()

    async def load() -> None:
        """Orders keep coming (four a second) until the chaos is over."""
        async with httpx.AsyncClient() as http:
            tasks = []
            while not chaos_over.is_set():
                kind = random.random()
                basket = [empty] if kind < 0.1 else random.sample(skus, random.randint(1, 2))
                token = "tok_declined" if 0.1 <= kind < 0.2 else "tok_ok"
                body = {
                    "items": [{"sku": sku, "quantity": random.randint(1, 3)} for sku in basket],
                    "shipping_address": ADDRESS,
                    "payment": {"token": token},
                }

                async def one(body: dict[str, Any] = body) -> None:
                    placed.append(await place_until_accepted(http, order_urls, headers, body))

                tasks.append(asyncio.create_task(one()))
                await asyncio.sleep(0.25)
            await asyncio.gather(*tasks)

    seconds = [f"{service}:2" for service in SERVICES]

    async def chaos() -> None:
        await asyncio.sleep(2)
        for victim in [*SERVICES, *seconds, GATEWAY, *relays]:
            stack.kill(victim)
            await asyncio.sleep(0.5)
            stack.revive(victim)
            await asyncio.sleep(1)
        with broker_proxy.cut_off():  # the broker goes away (e.g. restarts)
            await asyncio.sleep(2)
        with broker_proxy.partitioned():  # connections hang instead
            await asyncio.sleep(2)
        for _ in range(2):  # the machine dies: everything at once
            everything = stack.kill_all()
            await asyncio.sleep(0.5)
            for name in everything:
                stack.revive(name)
            await stack.wait_ready([*SERVICES, GATEWAY], timeout=60)
            await asyncio.sleep(1)
        chaos_over.set()

    try:
        await asyncio.gather(load(), chaos())
        await stack.wait_ready([*stack.all_names(), *seconds], timeout=60)

        async def statuses() -> dict[str, str]:
            rows = await db.fetch(
                "SELECT id::text, status FROM orders.orders WHERE id = ANY($1::uuid[])", placed
            )
            return {row["id"]: row["status"] for row in rows}

        # Everything ships or ends; the carrier then delivers what shipped.
        await eventually(
            statuses,
            lambda s: (
                len(s) == len(placed) and all(v in TERMINAL | {"shipped"} for v in s.values())
            ),
            120,
            "every order to ship or end",
        )
        for order_id, status in (await statuses()).items():
            if status == "shipped":
                for parcel in await oms.shipments(order_id=order_id):
                    if parcel["status"] == "dispatched":
                        now = datetime.now(UTC).isoformat()
                        await oms.tracking_event(parcel["id"], "delivered", now)
        final = await eventually(
            statuses, lambda s: set(s.values()) <= TERMINAL, 60, "every order to end"
        )
    finally:
        for name in [*extra, *relays]:
            stack.stop(name)
        for service in settings:
            await stack.restart(service)

    # No order lost, none doubled by the retries.
    assert len(set(placed)) == len(placed) == len(final)
    assert await db.fetchval(
        "SELECT count(*) FROM orders.orders WHERE customer_id = 'chaos'"
    ) == len(placed)
    outcomes = Counter(final.values())
    assert outcomes["completed"] > 0 and outcomes["rejected"] > 0

    # Every order's start and end were published at least once.
    seen: dict[str, set[str]] = {}
    while (message := await subscriber.get(fail=False, timeout=5)) is not None:
        await message.ack()
        seen.setdefault(message.correlation_id or "", set()).add(message.routing_key or "")
    await subscriber.delete(if_unused=False, if_empty=False)
    await connection.close()
    for order_id, status in final.items():
        assert {"order.created", f"order.{status}"} <= seen.get(order_id, set()), order_id

    # Applied exactly once: one reservation and one shipping movement per line and
    # location, one hold per paid order and one capture per parcel, one shipment per
    # parcel that left.
    completed = [order_id for order_id, status in final.items() if status == "completed"]
    movements = await db.fetch(
        "SELECT order_id, reason, count(*) AS n FROM inventory.stock_movements "
        "WHERE order_id = ANY($1::text[]) GROUP BY order_id, reason, sku, location",
        placed,
    )
    assert all(row["n"] == 1 for row in movements), [dict(r) for r in movements if r["n"] != 1]
    shipped_movements = {row["order_id"] for row in movements if row["reason"] == "ship"}
    assert shipped_movements == set(completed)
    shipments = await db.fetch(
        "SELECT order_id, count(*) AS n FROM shipping.shipments WHERE order_id = ANY($1::text[]) "
        "AND status NOT IN ('cancelled', 'failed') GROUP BY order_id",
        completed,
    )
    parcels = await db.fetch(
        "SELECT id::text, jsonb_array_length(fulfillments) AS n FROM orders.orders "
        "WHERE id = ANY($1::uuid[])",
        completed,
    )
    assert {row["order_id"]: row["n"] for row in shipments} == {
        row["id"]: row["n"] for row in parcels
    }
    assert any(row["n"] > 1 for row in parcels), "no order shipped in two parcels"
    stats = (await oms.http.get(f"{oms.urls['gateway']}/v1/_stats")).json()
    payments = await db.fetch(
        "SELECT id::text, order_id, status, captured_amount FROM payment.payments "
        "WHERE order_id = ANY($1::text[])",
        placed,
    )
    for payment in payments:
        assert stats["holds_by_reference"].get(payment["id"], 0) <= 1, payment["id"]

    # Money and stock add up, for the payment service and for the gateway, which
    # outlived its own deaths: every capture found the hold it was for.
    captured = sum(p["captured_amount"] for p in payments)
    totals = await db.fetchval(
        "SELECT coalesce(sum(total), 0) FROM orders.orders WHERE id = ANY($1::uuid[])", completed
    )
    assert captured == totals
    at_the_gateway = await db.fetchval(
        "SELECT coalesce(sum(captured_amount), 0) FROM gateway_simulator.authorizations "
        "WHERE reference = ANY($1::text[])",
        [p["id"] for p in payments],
    )
    assert at_the_gateway == totals
    assert (
        await db.fetchval(
            "SELECT count(*) FROM gateway_simulator.authorizations "
            "WHERE reference = ANY($1::text[]) AND decline_code IS NULL AND NOT released",
            [p["id"] for p in payments],
        )
        == 0
    ), "a hold was left on a card"
    held = await db.fetch(
        "SELECT order_id FROM payment.payments "
        "WHERE status IN ('authorized', 'partially_captured') "
        "AND order_id = ANY($1::text[])",
        placed,
    )
    assert held == []
    reserved = await db.fetch(
        "SELECT order_id FROM inventory.reservations WHERE status = 'reserved' "
        "AND order_id = ANY($1::text[])",
        placed,
    )
    assert reserved == []
    for sku, location in zip(skus, locations, strict=True):
        stock = (await oms.stock_at(sku))[location]
        shipped_units = sum(
            line["quantity"]
            for row in await db.fetch(
                "SELECT lines FROM orders.orders WHERE id = ANY($1::uuid[])", completed
            )
            for line in json.loads(row["lines"])
            if line["sku"] == sku
        )
        assert (stock["on_hand"], stock["reserved"]) == (10_000 - shipped_units, 0)
