"""The shipping service on its own, driven as the order service would drive it: one
shipment per parcel of an order, commanded over AMQP (`oms.commands`), dispatched
and tracked over HTTP, answering on `oms.events`. The orders here exist only in
these messages (the order service ignores answers about orders it does not have),
so nothing depends on how the order service uses the answers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from oms_contracts import Message
from oms_contracts import shipping as msgs
from oms_contracts.common import OrderLine, Parcel, ShippingAddress
from oms_devtools.client import OmsClient

from .helpers import EventRecorder, Publish, publishing

# Shipping alone, driven over AMQP and HTTP: nothing here depends on replicas.
pytestmark = [pytest.mark.e2e, pytest.mark.single_pass]

Send = Publish

HOME = ShippingAddress(
    name="Ada Lovelace", line1="1 Main St", city="Berlin", postal_code="10115", country="DE"
)
OFFICE = HOME.model_copy(update={"line1": "9 Work Rd", "city": "Hamburg", "postal_code": "20095"})
# Replies may wait behind the other tests' messages.
WAIT = 30


@pytest.fixture
async def send(test_amqp_url: str) -> AsyncIterator[Send]:
    """Publish a command on `oms.commands` as the order service does (an envelope with
    the order as correlation id)."""
    async with publishing(test_amqp_url) as publish:
        yield publish


def lines(**quantities: int) -> list[OrderLine]:
    return [OrderLine(sku=sku, quantity=q) for sku, q in quantities.items()]


class AnOrder:
    """An order of the test's own: its id, and a fulfillment id per location as the
    order service makes them (unique, stable per location)."""

    def __init__(self, send: Send, events: EventRecorder) -> None:
        self.id = str(uuid.uuid4())
        self._send = send
        self._events = events

    def parcel(self, location: str) -> str:
        return f"{self.id}:{location}"

    async def send(self, command: Message) -> None:
        await self._send(command, self.id)

    async def create(self, location: str, **quantities: int) -> dict[str, Any]:
        """Ask for the parcel at `location`; its `shipment_created`."""
        await self.send(
            msgs.CreateShipment(
                order_id=self.id,
                fulfillment_id=self.parcel(location),
                location=location,
                lines=lines(**quantities),
                shipping_address=HOME,
            )
        )
        return (await self.answers("shipping.shipment_created", self.parcel(location)))[0]

    async def answers(
        self, routing_key: str, fulfillment_id: str | None = None, count: int = 1
    ) -> list[dict[str, Any]]:
        """At least `count` `routing_key` events about this order (and this parcel)."""
        return await self._events.wait_for(
            routing_key,
            lambda data: (
                data["order_id"] == self.id
                and (fulfillment_id is None or data.get("fulfillment_id") == fulfillment_id)
            ),
            count=count,
            timeout=WAIT,
        )


@pytest.fixture
def an_order(send: Send, event_recorder: EventRecorder) -> Callable[[], AnOrder]:
    return lambda: AnOrder(send, event_recorder)


def by_parcel(shipments: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {shipment["location"]: shipment for shipment in shipments}


async def dispatched(oms: OmsClient, shipment_id: str) -> dict[str, Any]:
    response = await oms.dispatch(shipment_id)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_two_parcels_of_one_order_leave_one_by_one_with_their_own_tracking_numbers(
    oms: OmsClient, an_order: Callable[[], AnOrder]
) -> None:
    order = an_order()
    north = await order.create("north", MUG=2)
    south = await order.create("south", TEA=1)
    assert north["shipment_id"] != south["shipment_id"]
    assert (north["location"], south["location"]) == ("north", "south")

    notes = by_parcel(await oms.shipments(order_id=order.id))
    assert {loc: (n["fulfillment_id"], n["status"]) for loc, n in notes.items()} == {
        "north": (order.parcel("north"), "created"),
        "south": (order.parcel("south"), "created"),
    }
    assert notes["north"]["lines"] == [{"sku": "MUG", "quantity": 2}]
    # Each warehouse sees its own parcels waiting.
    waiting_north = await oms.shipments(status="created", location="north")
    assert north["shipment_id"] in {s["id"] for s in waiting_north}
    assert south["shipment_id"] not in {s["id"] for s in waiting_north}

    first = await dispatched(oms, north["shipment_id"])
    left = (await order.answers("shipping.shipment_dispatched", order.parcel("north")))[0]
    assert (left["location"], left["tracking_number"]) == ("north", first["tracking_number"])
    assert (await oms.shipment(south["shipment_id"]))["status"] == "created"

    second = await dispatched(oms, south["shipment_id"])
    await order.answers("shipping.shipment_dispatched", order.parcel("south"))
    assert first["tracking_number"] != second["tracking_number"]

    now = datetime.now(UTC).isoformat()
    delivered = await oms.tracking_event(north["shipment_id"], "delivered", now)
    assert delivered.status_code == 202, delivered.text
    arrival = (await order.answers("shipping.delivered", order.parcel("north")))[0]
    assert arrival["tracking_number"] == first["tracking_number"]
    assert (await oms.shipment(south["shipment_id"]))["status"] == "dispatched"


async def test_a_parcel_is_cancelled_while_the_other_one_already_left(
    oms: OmsClient, an_order: Callable[[], AnOrder]
) -> None:
    order = an_order()
    north = await order.create("north", MUG=2)
    south = await order.create("south", TEA=1)
    await dispatched(oms, north["shipment_id"])

    await order.send(
        msgs.CancelShipment(
            order_id=order.id, reason="customer_request", fulfillment_id=order.parcel("south")
        )
    )
    await order.answers("shipping.shipment_cancelled", order.parcel("south"))
    # Cancelling the whole order now: the parcel that left says so again.
    await order.send(msgs.CancelShipment(order_id=order.id, reason="customer_request"))
    await order.answers("shipping.shipment_dispatched", order.parcel("north"), count=2)
    await order.answers("shipping.shipment_cancelled", order.parcel("south"), count=2)

    notes = by_parcel(await oms.shipments(order_id=order.id))
    assert (notes["north"]["status"], notes["south"]["status"]) == ("dispatched", "cancelled")
    refused = await oms.dispatch(south["shipment_id"])
    assert refused.status_code == 409, refused.text


async def test_a_hold_is_refused_once_a_parcel_left_and_the_other_can_still_leave(
    oms: OmsClient, an_order: Callable[[], AnOrder]
) -> None:
    order = an_order()
    north = await order.create("north", MUG=2)
    south = await order.create("south", TEA=1)
    await dispatched(oms, north["shipment_id"])

    await order.send(msgs.HoldShipment(order_id=order.id))

    refusal = (await order.answers("shipping.shipment_hold_refused"))[0]
    assert refusal["reason"] == "already_dispatched"
    await dispatched(oms, south["shipment_id"])


async def test_an_item_change_moves_lines_to_a_new_parcel_and_cancels_one(
    oms: OmsClient, an_order: Callable[[], AnOrder]
) -> None:
    order = an_order()
    north = await order.create("north", MUG=2)
    south = await order.create("south", TEA=1)
    await order.send(msgs.HoldShipment(order_id=order.id))
    await order.answers("shipping.shipment_held")
    held = await oms.dispatch(north["shipment_id"])
    assert held.status_code == 409, held.text

    plan = [
        Parcel(fulfillment_id=order.parcel("north"), location="north", lines=lines(MUG=3)),
        Parcel(fulfillment_id=order.parcel("east"), location="east", lines=lines(CUP=4)),
    ]
    await order.send(
        msgs.UpdateShipment(order_id=order.id, lines=lines(MUG=3, CUP=4), parcels=plan)
    )

    updated = (await order.answers("shipping.shipment_updated"))[0]
    assert updated["parcels"] == [p.model_dump(mode="json") for p in plan]
    await order.answers("shipping.shipment_cancelled", order.parcel("south"))
    east = (await order.answers("shipping.shipment_created", order.parcel("east")))[0]
    notes = by_parcel(await oms.shipments(order_id=order.id))
    assert {loc: n["status"] for loc, n in notes.items()} == {
        "north": "created",
        "south": "cancelled",
        "east": "created",
    }
    assert notes["north"]["lines"] == [{"sku": "MUG", "quantity": 3}]
    assert (notes["east"]["id"], notes["east"]["lines"]) == (
        east["shipment_id"],
        [{"sku": "CUP", "quantity": 4}],
    )
    assert notes["east"]["address"]["line1"] == HOME.line1
    await dispatched(oms, north["shipment_id"])
    await dispatched(oms, east["shipment_id"])
    assert (await oms.dispatch(south["shipment_id"])).status_code == 409


async def test_a_new_address_goes_to_every_parcel_until_one_left(
    oms: OmsClient, an_order: Callable[[], AnOrder]
) -> None:
    order = an_order()
    north = await order.create("north", MUG=2)
    await order.create("south", TEA=1)

    await order.send(msgs.ChangeShippingAddress(order_id=order.id, shipping_address=OFFICE))
    await order.answers("shipping.address_changed")
    notes = await oms.shipments(order_id=order.id)
    assert {n["address"]["line1"] for n in notes} == {OFFICE.line1}

    await dispatched(oms, north["shipment_id"])
    await order.send(msgs.ChangeShippingAddress(order_id=order.id, shipping_address=HOME))
    refusal = (await order.answers("shipping.address_change_refused"))[0]
    assert refusal["reason"] == "already_dispatched"
    notes = await oms.shipments(order_id=order.id)
    assert {n["address"]["line1"] for n in notes} == {OFFICE.line1}


async def test_a_command_without_a_fulfillment_id_is_the_order_s_only_parcel_at_default(
    oms: OmsClient, an_order: Callable[[], AnOrder]
) -> None:
    order = an_order()
    legacy = msgs.CreateShipment(order_id=order.id, lines=lines(MUG=1), shipping_address=HOME)

    await order.send(legacy)
    created = (await order.answers("shipping.shipment_created"))[0]
    assert (created["fulfillment_id"], created["location"]) == (order.id, "default")
    await order.send(legacy)
    again = await order.answers("shipping.shipment_created", count=2)
    assert again[1]["shipment_id"] == created["shipment_id"]

    await order.send(msgs.HoldShipment(order_id=order.id))
    await order.answers("shipping.shipment_held")
    await order.send(msgs.UpdateShipment(order_id=order.id, lines=lines(MUG=5)))
    updated = (await order.answers("shipping.shipment_updated"))[0]
    assert updated["parcels"] == [
        {
            "fulfillment_id": order.id,
            "location": "default",
            "lines": [{"sku": "MUG", "quantity": 5}],
        }
    ]

    await order.send(msgs.CancelShipment(order_id=order.id, reason="customer_request"))
    cancelled = (await order.answers("shipping.shipment_cancelled"))[0]
    assert (cancelled["shipment_id"], cancelled["fulfillment_id"]) == (
        created["shipment_id"],
        order.id,
    )
    [only] = await oms.shipments(order_id=order.id)
    assert (only["fulfillment_id"], only["location"], only["status"]) == (
        order.id,
        "default",
        "cancelled",
    )
    assert only["lines"] == [{"sku": "MUG", "quantity": 5}]
