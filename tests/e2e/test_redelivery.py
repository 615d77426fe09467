"""Every message of a finished saga delivered again, shuffled, changes nothing: neither
as duplicates (same message ids) nor as re-sent requests (new message ids)."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
import pytest

from oms_contracts import EVENTS_EXCHANGE
from oms_devtools.client import OmsClient

from .helpers import Tap, dead_letters, shipped_order, wait_until_quiet

pytestmark = pytest.mark.e2e


async def snapshot(
    oms: OmsClient, db: asyncpg.Connection, amqp_url: str, order_id: str, sku: str
) -> dict[str, Any]:
    order = await oms.order(order_id)
    payment = await oms.payment_of(order_id)
    assert payment is not None
    gateway = await oms.gateway_holds(payment["id"])
    return {
        "order": (order["status"], order["total"], order["tracking_number"]),
        # The history notes each reply it ignored (support may ask); nothing else.
        "history": [e["step"] for e in await oms.history(order_id) if e["step"] != "reply_ignored"],
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
        "dead letters": await dead_letters(amqp_url),
    }


async def test_replaying_a_whole_saga_shuffled_changes_nothing(
    oms: OmsClient, db: asyncpg.Connection, test_amqp_url: str
) -> None:
    connection = await aio_pika.connect_robust(test_amqp_url)
    try:
        channel = await connection.channel()
        tap = await Tap.on(channel)

        product = await oms.create_product(on_hand=5)
        order_id, shipment_id = await shipped_order(oms, [(product["sku"], 2)])
        await oms.tracking_event(shipment_id, "delivered", datetime.now(UTC).isoformat())
        await oms.wait_for_order(order_id, "completed")
        # Every message of the saga published and handled, the last confirmations too.
        await wait_until_quiet(db, test_amqp_url, tap)

        recorded = [m for m in tap.seen if m.correlation_id == order_id]
        kinds = {m.routing_key for m in recorded}
        assert {
            "inventory.reserve_stock",
            "payment.authorize_payment",
            "shipping.create_shipment",
            "payment.capture_payment",
            "inventory.commit_stock",
            "shipping.delivered",
            "payment.captured",
            "order.completed",
        } <= kinds
        before = await snapshot(oms, db, test_amqp_url, order_id, product["sku"])

        for fresh_ids in (False, True):
            random.shuffle(recorded)
            for message in recorded:
                body = json.loads(message.body)
                if fresh_ids:  # a re-sent request, not a duplicate: the inbox cannot help
                    body["message_id"] = str(uuid.uuid4())
                exchange = await channel.get_exchange(message.exchange or EVENTS_EXCHANGE)
                await exchange.publish(
                    aio_pika.Message(
                        json.dumps(body).encode(),
                        message_id=body["message_id"],
                        correlation_id=order_id,
                        headers=message.headers or {},
                    ),
                    routing_key=message.routing_key or "",
                )
            # Handled, every copy and whatever the services answered to it.
            await wait_until_quiet(db, test_amqp_url, tap)
            after = await snapshot(oms, db, test_amqp_url, order_id, product["sku"])
            assert after == before, f"replayed with fresh ids: {fresh_ids}"
    finally:
        await connection.close()
