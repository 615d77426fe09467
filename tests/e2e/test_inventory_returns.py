"""Returned goods through the real inventory service, driven as the order service
drives it: `inventory.return_stock` published on `oms.commands`, the answer
(`inventory.stock_returned`) read from `oms.events`, the stock read over HTTP.
Resellable units go back on hand at the location named, damaged ones are counted
there and never sold, a return is booked once however often it is sent, a location
the product was never stocked at gets a stock row, and a return inventory cannot
book waits in the dead letters until an operator fixes the cause and replays it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractExchange

from oms_contracts import COMMANDS_EXCHANGE, Command, Envelope
from oms_contracts import inventory as msgs
from oms_contracts.common import OrderLine, ReturnCondition, ReturnedLine
from oms_devtools.client import OmsClient, eventually
from oms_devtools.stack import Stack

from .helpers import EventRecorder, stock_books_agree
from .scenarios import consumed

pytestmark = pytest.mark.e2e


@dataclass
class Commands:
    """Publishes commands on `oms.commands`, as the order service's relay does."""

    exchange: AbstractExchange

    async def send(self, command: Command, envelope: Envelope | None = None) -> Envelope:
        """`command` in a new envelope, or in `envelope` again (a redelivery)."""
        envelope = envelope or Envelope.wrap(
            command, correlation_id=getattr(command, "order_id", None)
        )
        await self.exchange.publish(
            aio_pika.Message(
                envelope.model_dump_json().encode(), message_id=str(envelope.message_id)
            ),
            routing_key=command.routing_key,
        )
        return envelope


@pytest.fixture
async def commands(stack: Stack, test_amqp_url: str) -> AsyncIterator[Commands]:
    connection = await aio_pika.connect_robust(
        test_amqp_url, client_properties={"connection_name": "e2e-inventory-returns"}
    )
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            COMMANDS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        yield Commands(exchange)
    finally:
        await connection.close()


def a_return(*lines: tuple[str, int, str, ReturnCondition]) -> msgs.ReturnStock:
    """A return of a fresh order: lines as (sku, quantity, location, condition)."""
    return msgs.ReturnStock(
        order_id=str(uuid.uuid4()),
        return_id=str(uuid.uuid4()),
        lines=[
            ReturnedLine(sku=sku, quantity=quantity, location=location, condition=condition)
            for sku, quantity, location, condition in lines
        ],
    )


async def stock_returned(
    recorder: EventRecorder, command: msgs.ReturnStock, count: int = 1, timeout: float = 20
) -> list[dict[str, Any]]:
    """The `inventory.stock_returned` answers about the command's return (at least
    `count` of them)."""
    return await recorder.wait_for(
        "inventory.stock_returned",
        lambda data: data["return_id"] == command.return_id,
        count=count,
        timeout=timeout,
    )


def the_answer_to(command: msgs.ReturnStock) -> dict[str, Any]:
    return command.model_dump(mode="json")


async def at(oms: OmsClient, sku: str, location: str) -> tuple[int, int, int, int]:
    """(on_hand, reserved, available, damaged) of the product at the location."""
    level = (await oms.stock_at(sku))[location]
    return level["on_hand"], level["reserved"], level["available"], level["damaged"]


async def reserve(
    commands: Commands, recorder: EventRecorder, sku: str, quantity: int
) -> tuple[str, dict[str, Any]]:
    """A reservation as the saga asks for one: (order id, the answer's routing key
    and data)."""
    order_id = str(uuid.uuid4())
    await commands.send(
        msgs.ReserveStock(order_id=order_id, lines=[OrderLine(sku=sku, quantity=quantity)])
    )

    def answers() -> list[tuple[str, dict[str, Any]]]:
        return [
            (key, data)
            for key in ("inventory.stock_reserved", "inventory.stock_reservation_failed")
            for data in recorder.published(key, lambda data: data["order_id"] == order_id)
        ]

    [answer] = await eventually(
        lambda: asyncio.sleep(0, answers()), bool, 20, f"an answer to the reservation of {sku}"
    )
    return order_id, {"answer": answer[0], **answer[1]}


async def test_resellable_units_are_on_hand_again_at_their_location_and_damaged_never_sold(
    oms: OmsClient, commands: Commands, event_recorder: EventRecorder, db: asyncpg.Connection
) -> None:
    shop = (await oms.create_location(priority=1))["code"]
    warehouse = (await oms.create_location(priority=2))["code"]
    sku = (await oms.create_product(stock={shop: 4, warehouse: 1}))["sku"]
    command = a_return(
        (sku, 2, warehouse, "resellable"),
        (sku, 3, warehouse, "damaged"),
    )

    await commands.send(command)
    [answer] = await stock_returned(event_recorder, command)

    assert answer == the_answer_to(command)
    assert await at(oms, sku, warehouse) == (3, 0, 3, 3)
    assert await at(oms, sku, shop) == (4, 0, 4, 0)
    product = await oms.product(sku)
    assert (product["on_hand"], product["available"], product["damaged"]) == (7, 7, 3)
    ledger = [
        (m["reason"], m["on_hand_delta"], m["damaged_delta"], m["order_id"], m["note"])
        for m in await oms.movements(sku, warehouse)
    ]
    assert ledger == [
        ("initial", 1, 0, None, None),
        ("return", 2, 0, command.order_id, command.return_id),
        ("return_damaged", 0, 3, command.order_id, command.return_id),
    ]

    # Every sellable unit sells (the 3 back on hand included); the damaged ones never.
    _, refused = await reserve(commands, event_recorder, sku, 8)
    everything, reserved = await reserve(commands, event_recorder, sku, 7)
    assert (refused["answer"], refused["reason"]) == (
        "inventory.stock_reservation_failed",
        "out_of_stock",
    )
    assert reserved["answer"] == "inventory.stock_reserved"
    assert await at(oms, sku, warehouse) == (3, 3, 0, 3)
    await commands.send(msgs.ReleaseStock(order_id=everything, reason="test over"))
    await event_recorder.wait_for(
        "inventory.stock_released", lambda data: data["order_id"] == everything
    )
    await stock_books_agree(db, [sku])


async def test_a_redelivered_or_re_sent_return_is_booked_once_and_answered_again(
    oms: OmsClient,
    stack: Stack,
    commands: Commands,
    event_recorder: EventRecorder,
    db: asyncpg.Connection,
) -> None:
    sku = (await oms.create_product(on_hand=5))["sku"]
    command = a_return((sku, 2, "default", "resellable"), (sku, 1, "default", "damaged"))
    duplicates_before = await consumed(
        oms, stack, "inventory", type="inventory.return_stock", outcome="duplicate"
    )

    first = await commands.send(command)
    await commands.send(command, first)  # redelivered: the same message again
    await commands.send(command)  # re-sent: a new message for the same return

    await stock_returned(event_recorder, command, count=2)
    # The redelivered copy was recognised as such (and answered nothing).
    await eventually(
        lambda: consumed(
            oms, stack, "inventory", type="inventory.return_stock", outcome="duplicate"
        ),
        lambda duplicates: duplicates >= duplicates_before + 1,
        20,
        "the redelivered return to be recognised",
    )
    assert await at(oms, sku, "default") == (7, 0, 7, 1)
    returns = [m for m in await oms.movements(sku) if m["note"] == command.return_id]
    assert [(m["reason"], m["on_hand_delta"], m["damaged_delta"]) for m in returns] == [
        ("return", 2, 0),
        ("return_damaged", 0, 1),
    ]
    await stock_books_agree(db, [sku])
    answers = event_recorder.published(
        "inventory.stock_returned", lambda data: data["return_id"] == command.return_id
    )
    assert answers == [the_answer_to(command)] * 2


async def test_a_location_the_product_was_never_stocked_at_gets_a_stock_row(
    oms: OmsClient, commands: Commands, event_recorder: EventRecorder, db: asyncpg.Connection
) -> None:
    home = (await oms.create_location(priority=1))["code"]
    store = (await oms.create_location(priority=2))["code"]
    sku = (await oms.create_product(stock={home: 2}))["sku"]
    assert list(await oms.stock_at(sku)) == [home]
    command = a_return((sku, 1, store, "resellable"), (sku, 1, store, "damaged"))

    await commands.send(command)
    await stock_returned(event_recorder, command)

    assert list(await oms.stock_at(sku)) == [home, store]
    assert await at(oms, sku, store) == (1, 0, 1, 1)
    assert await at(oms, sku, home) == (2, 0, 2, 0)
    await stock_books_agree(db, [sku])


async def test_returned_stock_lifts_a_location_out_of_low_stock_so_the_next_dip_alerts_again(
    oms: OmsClient, commands: Commands, event_recorder: EventRecorder, db: asyncpg.Connection
) -> None:
    sku = (await oms.create_product(on_hand=6, low_stock_threshold=3))["sku"]

    async def low() -> bool:
        return bool((await oms.stock_at(sku))["default"]["low_stock"])

    first, _ = await reserve(commands, event_recorder, sku, 4)  # 2 left: low
    await event_recorder.wait_for("inventory.low_stock", lambda data: data["sku"] == sku)
    damaged = a_return((sku, 4, "default", "damaged"))
    await commands.send(damaged)
    await stock_returned(event_recorder, damaged)
    assert await low()  # damaged units sell nothing
    resellable = a_return((sku, 4, "default", "resellable"))
    await commands.send(resellable)
    await stock_returned(event_recorder, resellable)
    assert not await low()  # 6 available
    second, _ = await reserve(commands, event_recorder, sku, 3)  # 3 left: low again

    found = await event_recorder.wait_for(
        "inventory.low_stock", lambda data: data["sku"] == sku, count=2
    )
    assert [(alert["location"], alert["available"]) for alert in found] == [
        ("default", 2),
        ("default", 3),
    ]
    await stock_books_agree(db, [sku])
    for order_id in (first, second):
        await commands.send(msgs.ReleaseStock(order_id=order_id, reason="test over"))


async def test_a_return_to_an_unknown_location_waits_in_the_dead_letters_until_replayed(
    oms: OmsClient, commands: Commands, event_recorder: EventRecorder, db: asyncpg.Connection
) -> None:
    sku = (await oms.create_product(on_hand=2))["sku"]
    gone = f"GONE-{uuid.uuid4().hex[:6]}"
    command = a_return((sku, 1, "default", "resellable"), (sku, 2, gone, "resellable"))
    envelope = await commands.send(command)
    letter_url = f"{oms.urls['inventory']}/admin/dead-letters/{envelope.message_id}"

    letter = await eventually(
        lambda: oms.http.get(letter_url, headers=oms.admin()),
        lambda response: response.status_code == 200,
        30,
        "the return in inventory's dead letters",
    )

    assert gone in letter.json()["error"]
    assert await at(oms, sku, "default") == (2, 0, 2, 0)
    assert (
        event_recorder.published(
            "inventory.stock_returned", lambda data: data["return_id"] == command.return_id
        )
        == []
    )
    # The operator sets the location up, then replays the return: booked whole.
    await oms.create_location(gone)
    replayed = await oms.http.post(f"{letter_url}/replay", headers=oms.admin())
    assert replayed.status_code == 200, replayed.text
    [answer] = await stock_returned(event_recorder, command)
    assert answer == the_answer_to(command)
    assert await at(oms, sku, "default") == (3, 0, 3, 0)
    assert await at(oms, sku, gone) == (2, 0, 2, 0)
    await stock_books_agree(db, [sku])
