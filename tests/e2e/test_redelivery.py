"""Every message of a finished saga delivered again, shuffled, changes nothing: neither
as duplicates (same message ids) nor as re-sent requests (new message ids)."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
import pytest

from oms_contracts import COMMANDS_EXCHANGE, EVENTS_EXCHANGE
from oms_devtools.client import OmsClient, eventually

pytestmark = pytest.mark.e2e


async def snapshot(
    oms: OmsClient, db: asyncpg.Connection, order_id: str, sku: str
) -> dict[str, Any]:
    order = await oms.order(order_id)
    payment = await oms.payment_of(order_id)
    assert payment is not None
    gateway = (
        await oms.http.get(
            f"{oms.urls['gateway']}/v1/authorizations", params={"reference": payment["id"]}
        )
    ).json()["items"]
    return {
        "order": (order["status"], order["total"], order["tracking_number"]),
        "product": await oms.product(sku),
        "movements": await db.fetchval(
            "SELECT count(*) FROM inventory.stock_movements WHERE sku = $1", sku
        ),
        "reservation": await db.fetchval(
            "SELECT status FROM inventory.reservations WHERE order_id = $1", order_id
        ),
        "payment": {
            k: payment[k]
            for k in ("status", "authorized_amount", "captured_amount", "refunded_amount")
        },
        "gateway": [(h["status"], h["captured_amount"]) for h in gateway],
        "operations": await db.fetchval(
            "SELECT count(*) FROM payment.payment_operations o JOIN payment.payments p "
            "ON p.id = o.payment_id WHERE p.order_id = $1",
            order_id,
        ),
        "shipments": await db.fetch(
            "SELECT status, tracking_number FROM shipping.shipments WHERE order_id = $1", order_id
        ),
    }


async def test_replaying_a_whole_saga_shuffled_changes_nothing(
    oms: OmsClient, db: asyncpg.Connection, test_amqp_url: str
) -> None:
    connection = await aio_pika.connect_robust(test_amqp_url)
    channel = await connection.channel()
    tap = await channel.declare_queue(exclusive=True)
    for name in (EVENTS_EXCHANGE, COMMANDS_EXCHANGE):
        exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
        await tap.bind(exchange, "#")

    product = await oms.create_product(on_hand=5)
    order_id = (await oms.place_order([(product["sku"], 2)])).json()["id"]
    await oms.wait_for_order(order_id, "fulfilling")
    shipment = await oms.shipment_of(order_id)
    assert shipment is not None
    await oms.dispatch(shipment["id"])
    await eventually(
        lambda: oms.payment_of(order_id), lambda p: p["status"] == "captured", 10, "capture"
    )
    await oms.tracking_event(shipment["id"], "delivered", datetime.now(UTC).isoformat())
    await oms.wait_for_order(order_id, "completed")
    await asyncio.sleep(1)  # the last confirmations

    recorded: list[aio_pika.abc.AbstractIncomingMessage] = []
    while (message := await tap.get(fail=False, timeout=5)) is not None:
        await message.ack()
        if message.correlation_id == order_id:
            recorded.append(message)
    kinds = {m.routing_key for m in recorded}
    assert {
        "inventory.reserve_stock",
        "payment.authorize_payment",
        "shipping.create_shipment",
        "payment.capture_payment",
        "inventory.commit_stock",
        "shipping.delivered",
        "payment.captured",
    } <= kinds
    before = await snapshot(oms, db, order_id, product["sku"])

    exchanges = {
        name: await channel.get_exchange(name) for name in (EVENTS_EXCHANGE, COMMANDS_EXCHANGE)
    }
    for fresh_ids in (False, True):
        random.shuffle(recorded)
        for message in recorded:
            body = json.loads(message.body)
            if fresh_ids:  # a re-sent request, not a duplicate: the inbox cannot help
                body["message_id"] = str(uuid.uuid4())
            await exchanges[message.exchange or EVENTS_EXCHANGE].publish(
                aio_pika.Message(
                    json.dumps(body).encode(),
                    message_id=body["message_id"],
                    correlation_id=order_id,
                    headers=message.headers or {},
                ),
                routing_key=message.routing_key or "",
            )
        await asyncio.sleep(3)
        assert await snapshot(oms, db, order_id, product["sku"]) == before, fresh_ids
    await connection.close()
