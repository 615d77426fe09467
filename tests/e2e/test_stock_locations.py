"""Stock at several locations, through the real inventory service: locations and
stock per location over HTTP, the saga's commands published straight onto
`oms.commands` and the answers read from `oms.events` (so nothing here depends on
the order service): allocation, country eligibility, no oversell and no deadlock
under concurrency, commit per location, and the ledger per (SKU, location)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage

from oms_contracts import COMMANDS_EXCHANGE, EVENTS_EXCHANGE, Command, Envelope
from oms_contracts import inventory as msgs
from oms_contracts.common import OrderLine
from oms_devtools.client import OmsClient, eventually
from oms_devtools.stack import Stack, free_port_block

from .helpers import stock_books_agree

# Inventory alone, with extra processes of its own where concurrency matters.
pytestmark = [pytest.mark.e2e, pytest.mark.single_pass]

ANSWERS = ("inventory.stock_reserved", "inventory.stock_reservation_failed")


@dataclass
class Inventory:
    """The inventory service as the saga talks to it: commands in, events out. Every
    event it publishes lands in `events`, by routing key and order (or SKU)."""

    commands: AbstractExchange
    events: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    async def on_event(self, message: AbstractIncomingMessage) -> None:
        data = json.loads(message.body)["data"]
        subject = data.get("order_id") or data.get("sku") or ""
        self.events.setdefault((message.routing_key or "", subject), []).append(data)

    async def send(self, command: Command) -> None:
        envelope = Envelope.wrap(command, correlation_id=getattr(command, "order_id", None))
        await self.commands.publish(
            aio_pika.Message(
                envelope.model_dump_json().encode(), message_id=str(envelope.message_id)
            ),
            routing_key=command.routing_key,
        )

    def seen(self, order_id: str, *routing_keys: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (key, data) for key in routing_keys for data in self.events.get((key, order_id), [])
        ]

    async def answer(
        self, order_id: str, *routing_keys: str, count: int = 1, timeout: float = 20
    ) -> tuple[str, dict[str, Any]]:
        """The latest of at least `count` answers about the order among `routing_keys`."""
        found = await eventually(
            lambda: asyncio.sleep(0, self.seen(order_id, *routing_keys)),
            lambda seen: len(seen) >= count,
            timeout,
            f"{count} of {routing_keys} for {order_id}",
        )
        return found[-1]

    async def reserve(
        self, lines: dict[str, int], country: str | None, order_id: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        order_id = order_id or str(uuid.uuid4())
        await self.send(
            msgs.ReserveStock(
                order_id=order_id,
                lines=[OrderLine(sku=sku, quantity=q) for sku, q in lines.items()],
                country=country,
            )
        )
        key, data = await self.answer(order_id, *ANSWERS)
        return order_id, {"answer": key, **data}


@pytest.fixture
async def inventory(stack: Stack, test_amqp_url: str) -> AsyncIterator[Inventory]:
    connection = await aio_pika.connect_robust(
        test_amqp_url, client_properties={"connection_name": "e2e-stock-locations"}
    )
    try:
        channel = await connection.channel()
        events = await channel.declare_exchange(
            EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        commands = await channel.declare_exchange(
            COMMANDS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(events, routing_key="inventory.#")
        inventory = Inventory(commands)
        await queue.consume(inventory.on_event, no_ack=True)
        yield inventory
    finally:
        await connection.close()


def code(name: str) -> str:
    """A location code of this test's own (the database is shared by the session)."""
    return f"{name}-{uuid.uuid4().hex[:6]}"


def allocation_of(answer: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {
        parcel["location"]: {line["sku"]: line["quantity"] for line in parcel["lines"]}
        for parcel in answer["allocations"]
    }


def levels(product: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(on_hand, reserved) per location, from the product resource."""
    return {
        level["location"]: (level["on_hand"], level["reserved"]) for level in product["locations"]
    }


# -- locations over HTTP ---------------------------------------------------------------


async def test_locations_are_created_listed_and_refused_when_taken_or_invalid(
    oms: OmsClient,
) -> None:
    berlin = code("BER")
    created = await oms.create_location(berlin, "DE", priority=3, serves=["DE", "AT", "DE"])
    assert created == {
        "code": berlin,
        "name": f"Location {berlin}",
        "country": "DE",
        "priority": 3,
        "serves": ["AT", "DE"],
    }
    url = f"{oms.urls['inventory']}/locations"
    listed = (await oms.http.get(url, headers=oms.admin())).json()["items"]
    assert created in listed
    assert {
        "code": "default",
        "name": "Default",
        "country": None,
        "priority": 100,
        "serves": None,
    } in listed
    taken = await oms.http.post(
        url, headers=oms.admin(), json={"code": berlin, "name": "Again", "country": "FR"}
    )
    assert (taken.status_code, taken.json()["type"], taken.json()["field"]) == (
        409,
        "/problems/location-exists",
        "code",
    )
    for body, field_name in [
        ({"code": code("X"), "name": "X", "country": "XX"}, "country"),
        ({"code": code("X"), "name": "X", "country": "DE", "serves": ["DE", "ZZ"]}, "serves[1]"),
        ({"code": code("X"), "name": "X", "country": "DE", "serves": []}, "serves"),
        ({"code": "has space", "name": "X", "country": "DE"}, "code"),
        ({"code": code("X"), "name": "X", "country": "DE", "priority": -1}, "priority"),
    ]:
        refused = await oms.http.post(url, headers=oms.admin(), json=body)
        assert refused.status_code == 422, body
        assert field_name in [e["field"] for e in refused.json()["errors"]], refused.json()
    customer = await oms.http.get(url, headers=oms.as_customer())
    assert customer.status_code == 403


async def test_a_product_is_stocked_counted_and_restocked_per_location(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    near, far = code("NEAR"), code("FAR")
    await oms.create_location(near, priority=1)
    await oms.create_location(far, priority=2)
    product = await oms.create_product(stock={far: 4, near: 6}, low_stock_threshold=4)
    sku = product["sku"]
    assert (product["on_hand"], product["available"]) == (10, 10)
    assert levels(product) == {near: (6, 0), far: (4, 0)}
    assert [level["location"] for level in product["locations"]] == [near, far]
    assert [level["low_stock"] for level in product["locations"]] == [False, True]
    url = f"{oms.urls['inventory']}/products/{sku}"

    restocked = await oms.http.post(
        f"{url}/restock",
        json={"quantity": 5, "location": far, "reference": "DN-1"},
        headers=oms.admin(),
    )
    assert restocked.status_code == 200
    assert levels(restocked.json()) == {near: (6, 0), far: (9, 0)}
    # A location the product was never stocked at: stocked there from now on.
    at_default = await oms.http.post(f"{url}/restock", json={"quantity": 2}, headers=oms.admin())
    assert levels(at_default.json())["default"] == (2, 0)
    counted = await oms.http.patch(url, json={"on_hand": 5, "location": near}, headers=oms.admin())
    assert counted.status_code == 200
    assert levels(counted.json()) == {near: (5, 0), far: (9, 0), "default": (2, 0)}

    page = (
        await oms.http.get(f"{url}/movements", params={"location": far}, headers=oms.admin())
    ).json()
    assert [(m["location"], m["reason"], m["on_hand_delta"]) for m in page["items"]] == [
        (far, "initial", 4),
        (far, "restock", 5),
    ]
    low = (
        await oms.http.get(
            f"{oms.urls['inventory']}/products",
            params={"low_stock": "true", "limit": 200},
            headers=oms.admin(),
        )
    ).json()
    # Low at `default` (2 <= 4), though not at the others.
    assert sku in [item["sku"] for item in low["items"]]
    await stock_books_agree(db, [sku])


async def test_stock_at_an_unknown_location_is_refused_naming_the_field(oms: OmsClient) -> None:
    known = code("KNOWN")
    await oms.create_location(known)
    sku = f"SKU-{uuid.uuid4().hex[:10]}"
    products = f"{oms.urls['inventory']}/products"
    body = {"sku": sku, "name": "Mug", "unit_price": 100, "currency": "EUR"}

    unknown = await oms.http.post(
        products,
        headers=oms.admin(),
        json={
            **body,
            "stock": [{"location": known, "on_hand": 1}, {"location": "NOWHERE", "on_hand": 2}],
        },
    )
    both = await oms.http.post(
        products,
        headers=oms.admin(),
        json={**body, "on_hand": 1, "stock": [{"location": known, "on_hand": 1}]},
    )
    twice = await oms.http.post(
        products,
        headers=oms.admin(),
        json={
            **body,
            "stock": [{"location": known, "on_hand": 1}, {"location": known, "on_hand": 2}],
        },
    )

    assert unknown.status_code == 422
    assert [e["field"] for e in unknown.json()["errors"]] == ["stock[1].location"]
    assert both.status_code == 422 and both.json()["errors"][0]["field"] == "stock"
    assert twice.status_code == 422 and twice.json()["errors"][0]["field"] == "stock[1].location"
    assert (await oms.http.get(f"{products}/{sku}", headers=oms.admin())).status_code == 404
    product = await oms.create_product(on_hand=1)
    restock = await oms.http.post(
        f"{products}/{product['sku']}/restock",
        json={"quantity": 1, "location": "NOWHERE"},
        headers=oms.admin(),
    )
    assert (restock.status_code, restock.json()["field"]) == (422, "location")
    assert (await oms.product(product["sku"]))["on_hand"] == 1


# -- allocation, through the saga's commands ----------------------------------------------


async def test_an_order_no_single_location_holds_is_split_over_two(
    oms: OmsClient, inventory: Inventory
) -> None:
    first, second = code("FIRST"), code("SECOND")
    await oms.create_location(first, priority=1)
    await oms.create_location(second, priority=2)
    product = await oms.create_product(stock={first: 4, second: 5}, unit_price=250)
    sku = product["sku"]

    order_id, answer = await inventory.reserve({sku: 7}, "DE")

    assert answer["answer"] == "inventory.stock_reserved"
    assert answer["lines"] == [{"sku": sku, "quantity": 7, "unit_price": 250}]
    assert allocation_of(answer) == {first: {sku: 4}, second: {sku: 3}}
    assert levels(await oms.product(sku)) == {first: (4, 4), second: (5, 3)}
    await inventory.send(msgs.ReleaseStock(order_id=order_id, reason="test over"))
    await inventory.answer(order_id, "inventory.stock_released")


async def test_one_location_that_can_fill_the_whole_order_is_preferred(
    oms: OmsClient, inventory: Inventory
) -> None:
    preferred, other = code("PREF"), code("OTHER")
    await oms.create_location(preferred, priority=1)
    await oms.create_location(other, priority=2)
    mug = (await oms.create_product(stock={preferred: 2, other: 10}))["sku"]
    tea = (await oms.create_product(stock={preferred: 5, other: 5}))["sku"]

    small, fits_both = await inventory.reserve({mug: 2, tea: 2}, "DE")
    large, fits_other = await inventory.reserve({mug: 4, tea: 2}, "DE")

    # Both could ship from `other`; `preferred` could ship the first whole too.
    assert allocation_of(fits_both) == {preferred: {mug: 2, tea: 2}}
    # No split of the second (preferred holds none of the mugs now): one parcel.
    assert allocation_of(fits_other) == {other: {mug: 4, tea: 2}}
    for order_id in (small, large):
        await inventory.send(msgs.ReleaseStock(order_id=order_id, reason="test over"))


async def test_only_locations_serving_the_country_are_used(
    oms: OmsClient, inventory: Inventory
) -> None:
    spain = code("ES")
    await oms.create_location(spain, "ES", serves=["ES", "PT"])
    sku = (await oms.create_product(stock={spain: 10}))["sku"]

    _, to_germany = await inventory.reserve({sku: 1}, "DE")
    to_portugal, served = await inventory.reserve({sku: 1}, "PT")

    assert to_germany["answer"] == "inventory.stock_reservation_failed"
    assert (to_germany["reason"], to_germany["skus"]) == ("out_of_stock", [sku])
    assert allocation_of(served) == {spain: {sku: 1}}
    assert served["allocations"][0]["serves"] == ["ES", "PT"]
    assert levels(await oms.product(sku)) == {spain: (10, 1)}
    await inventory.send(msgs.ReleaseStock(order_id=to_portugal, reason="test over"))


async def test_200_concurrent_reservations_over_25_plus_25_reserve_exactly_50(
    oms: OmsClient, inventory: Inventory, db: asyncpg.Connection
) -> None:
    east, west = code("EAST"), code("WEST")
    await oms.create_location(east, priority=1)
    await oms.create_location(west, priority=2)
    sku = (await oms.create_product(stock={east: 25, west: 25}))["sku"]
    order_ids = [str(uuid.uuid4()) for _ in range(200)]

    await asyncio.gather(
        *(
            inventory.send(
                msgs.ReserveStock(
                    order_id=order_id, lines=[OrderLine(sku=sku, quantity=1)], country="DE"
                )
            )
            for order_id in order_ids
        )
    )
    answers = await eventually(
        lambda: asyncio.sleep(0, [inventory.seen(o, *ANSWERS) for o in order_ids]),
        lambda seen: all(seen),
        90,
        "an answer to every reservation",
    )

    kinds = [found[0][0] for found in answers]
    assert (kinds.count(ANSWERS[0]), kinds.count(ANSWERS[1])) == (50, 150)
    assert all(len(found) == 1 for found in answers)
    assert levels(await oms.product(sku)) == {east: (25, 25), west: (25, 25)}
    held = await db.fetch(
        "SELECT line->>'location' AS location, sum((line->>'quantity')::int) AS held "
        "FROM inventory.reservations r, jsonb_array_elements(r.lines) AS line "
        "WHERE line->>'sku' = $1 AND r.status = 'reserved' GROUP BY 1",
        sku,
    )
    assert {row["location"]: row["held"] for row in held} == {east: 25, west: 25}
    await stock_books_agree(db, [sku])
    for order_id, found in zip(order_ids, answers, strict=True):
        if found[0][0] == ANSWERS[0]:
            await inventory.send(msgs.ReleaseStock(order_id=order_id, reason="test over"))


@contextlib.asynccontextmanager
async def more_inventory_processes(stack: Stack, count: int) -> AsyncIterator[list[str]]:
    """`count` more inventory processes competing for its queue (whatever the suite's
    replicas), so that transactions really run side by side; stopped afterwards."""
    port = free_port_block(count)
    names = [f"inventory:extra{index}" for index in range(count)]
    for index, name in enumerate(names):
        stack.start(name, port=port + index)
    try:
        async with httpx.AsyncClient(timeout=2) as http:

            async def ready() -> bool:
                try:
                    answers = [
                        await http.get(f"http://127.0.0.1:{port + index}/readyz")
                        for index in range(count)
                    ]
                except httpx.HTTPError:
                    return False
                return all(answer.status_code == 200 for answer in answers)

            await eventually(ready, bool, 60, "the extra inventory processes to be ready")
        yield names
    finally:
        for name in names:
            stack.stop(name)


async def test_concurrent_multi_sku_orders_over_several_locations_do_not_deadlock(
    oms: OmsClient, inventory: Inventory, db: asyncpg.Connection, stack: Stack
) -> None:
    sites = [code(f"L{n}") for n in range(3)]
    for priority, site in enumerate(sites):
        await oms.create_location(site, priority=priority)
    # Each SKU mostly at one location, a little at the others: orders split three
    # ways, and every order locks stock at every location of every SKU.
    skus = [
        (await oms.create_product(stock={site: 2000 if site == home else 3 for site in sites}))[
            "sku"
        ]
        for home in sites
    ]
    baskets = [
        {sku: random.randint(4, 6) for sku in order}
        for order in itertools.permutations(skus)
        for _ in range(25)
    ]
    order_ids = [str(uuid.uuid4()) for _ in baskets]

    async with more_inventory_processes(stack, 2) as extra:
        await asyncio.gather(
            *(
                inventory.send(
                    msgs.ReserveStock(
                        order_id=order_id,
                        lines=[OrderLine(sku=sku, quantity=q) for sku, q in basket.items()],
                        country="DE",
                    )
                )
                for order_id, basket in zip(order_ids, baskets, strict=True)
            )
        )
        for order_id in order_ids:
            key, answer = await inventory.answer(order_id, *ANSWERS, timeout=90)
            assert key == ANSWERS[0], answer
            assert len(answer["allocations"]) == 3
        # Every parcel leaves, in a different order for each order, all at once.
        commits = [
            msgs.CommitStock(order_id=order_id, location=site, fulfillment_id=f"{order_id}/{site}")
            for order_id in order_ids
            for site in random.sample(sites, len(sites))
        ]
        random.shuffle(commits)
        await asyncio.gather(*(inventory.send(commit) for commit in commits))
        for order_id in order_ids:
            await inventory.answer(order_id, "inventory.stock_committed", count=3, timeout=90)

    shipped = {sku: sum(basket[sku] for basket in baskets) for sku in skus}
    for sku in skus:
        product = await oms.product(sku)
        assert (product["on_hand"], product["reserved"]) == (2006 - shipped[sku], 0)
    await stock_books_agree(db, skus)
    # A deadlock fails a transaction, and inventory logs why before it tries again.
    logs = "".join(stack.logs(name) for name in [*stack.replica_names("inventory"), *extra])
    assert "deadlock detected" not in logs


# -- committing, releasing, changing per location -------------------------------------------


async def test_committing_a_parcel_decrements_its_location_only_and_answers_again_if_asked(
    oms: OmsClient, inventory: Inventory, db: asyncpg.Connection
) -> None:
    first, second = code("FIRST"), code("SECOND")
    await oms.create_location(first, priority=1)
    await oms.create_location(second, priority=2)
    sku = (await oms.create_product(stock={first: 4, second: 5}))["sku"]
    order_id, _ = await inventory.reserve({sku: 7}, "DE")
    commit = msgs.CommitStock(order_id=order_id, location=second, fulfillment_id="parcel-2")

    await inventory.send(commit)
    _, committed = await inventory.answer(order_id, "inventory.stock_committed")
    await inventory.send(commit)
    _, again = await inventory.answer(order_id, "inventory.stock_committed", count=2)

    assert committed == {
        "order_id": order_id,
        "lines": [{"sku": sku, "quantity": 3}],
        "location": second,
        "fulfillment_id": "parcel-2",
    }
    assert again == committed
    assert levels(await oms.product(sku)) == {first: (4, 4), second: (2, 0)}

    # The order is cancelled with the first parcel still in the warehouse.
    await inventory.send(msgs.ReleaseStock(order_id=order_id, reason="customer_request"))
    await inventory.answer(order_id, "inventory.stock_released")
    assert levels(await oms.product(sku)) == {first: (4, 0), second: (2, 0)}
    await stock_books_agree(db, [sku])


async def test_new_items_are_allocated_afresh_and_low_stock_names_the_location(
    oms: OmsClient, inventory: Inventory, db: asyncpg.Connection
) -> None:
    small, large = code("SMALL"), code("LARGE")
    await oms.create_location(small, priority=1)
    await oms.create_location(large, priority=2)
    sku = (
        await oms.create_product(
            stock={small: 3, large: 9}, low_stock_threshold=2, reorder_quantity=30
        )
    )["sku"]
    order_id, first = await inventory.reserve({sku: 2}, "DE")
    assert allocation_of(first) == {small: {sku: 2}}

    await inventory.send(
        msgs.AdjustReservation(
            order_id=order_id, lines=[OrderLine(sku=sku, quantity=8)], country="DE"
        )
    )
    _, adjusted = await inventory.answer(order_id, "inventory.reservation_adjusted")

    assert allocation_of(adjusted) == {large: {sku: 8}}
    assert levels(await oms.product(sku)) == {small: (3, 0), large: (9, 8)}
    alerts = await eventually(
        lambda: asyncio.sleep(0, inventory.events.get(("inventory.low_stock", sku), [])),
        lambda found: any(alert["location"] == large for alert in found),
        10,
        "a low-stock alert at the large location",
    )
    assert [a["location"] for a in alerts] == [small, large]  # 3 - 2 = 1, then 9 - 8 = 1
    requests = (
        await oms.http.get(
            f"{oms.urls['inventory']}/replenishments",
            params={"location": large, "limit": 200},
            headers=oms.admin(),
        )
    ).json()["items"]
    assert [(r["sku"], r["location"], r["quantity"]) for r in requests] == [(sku, large, 30)]
    await inventory.send(msgs.ReleaseStock(order_id=order_id, reason="test over"))
    await inventory.answer(order_id, "inventory.stock_released")
    await stock_books_agree(db, [sku])
