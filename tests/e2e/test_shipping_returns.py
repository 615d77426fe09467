"""The shipping service's return parcels on their own, driven as the order service
would drive them: labels and cancellations commanded over AMQP (`oms.commands`), the
warehouse's receipt over HTTP, the answers on `oms.events`. The returns here exist
only in these messages (the order service ignores answers about returns it does not
have), so nothing depends on how the order service uses the answers."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from oms_contracts import Message
from oms_contracts import order as order_msgs
from oms_contracts import shipping as msgs
from oms_contracts.common import ReturnLine, ShippingAddress
from oms_devtools.client import OmsClient, eventually

from .helpers import EventRecorder, Publish, publishing

pytestmark = pytest.mark.e2e

HOME = ShippingAddress(
    name="Ada Lovelace", line1="1 Main St", city="Berlin", postal_code="10115", country="DE"
)
# Replies may wait behind the other tests' messages.
WAIT = 30


@pytest.fixture
async def send(test_amqp_url: str) -> AsyncIterator[Publish]:
    async with publishing(test_amqp_url) as publish:
        yield publish


class AReturn:
    """A return of the test's own (of an order of its own): 2 MUG that left from
    `north` and 1 TEA from `default`, unless told otherwise."""

    def __init__(self, send: Publish, events: EventRecorder) -> None:
        self.order_id = str(uuid.uuid4())
        self.id = str(uuid.uuid4())
        self._send = send
        self._events = events

    async def send(self, message: Message) -> None:
        await self._send(message, self.order_id)

    def label_request(self, *lines: tuple[str, int, str]) -> msgs.CreateReturnLabel:
        return msgs.CreateReturnLabel(
            order_id=self.order_id,
            return_id=self.id,
            lines=[
                ReturnLine(sku=sku, quantity=quantity, location=location)
                for sku, quantity, location in lines or (("MUG", 2, "north"), ("TEA", 1, "default"))
            ],
            shipping_address=HOME,
        )

    async def labelled(self, *lines: tuple[str, int, str]) -> dict[str, Any]:
        """Ask for the label; its `return_label_created`."""
        await self.send(self.label_request(*lines))
        return (await self.answers("shipping.return_label_created"))[0]

    async def cancel(self) -> None:
        await self.send(msgs.CancelReturn(order_id=self.order_id, return_id=self.id))

    async def answers(self, routing_key: str, count: int = 1) -> list[dict[str, Any]]:
        """At least `count` `routing_key` events about this return."""
        return await self._events.wait_for(
            routing_key,
            lambda data: data.get("return_id") == self.id,
            count=count,
            timeout=WAIT,
        )

    def said(self, routing_key: str) -> list[dict[str, Any]]:
        return self._events.published(routing_key, lambda data: data.get("return_id") == self.id)


@pytest.fixture
def a_return(send: Publish, event_recorder: EventRecorder) -> Callable[[], AReturn]:
    return lambda: AReturn(send, event_recorder)


def errors_of(response: Any) -> list[str]:
    """The fields a 422 names."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return sorted(error["field"] for error in response.json()["errors"])


async def test_an_approved_return_gets_a_label_and_the_same_request_again_the_same_label(
    oms: OmsClient, a_return: Callable[[], AReturn]
) -> None:
    returned = a_return()

    label = await returned.labelled()

    number = label["return_tracking_number"]
    assert (label["order_id"], re.fullmatch(r"SIM\d{12}", number) is not None) == (
        returned.order_id,
        True,
    )
    parcel = await oms.shipping_return(returned.id)
    assert (parcel["id"], parcel["order_id"], parcel["status"]) == (
        returned.id,
        returned.order_id,
        "label_created",
    )
    assert parcel["return_tracking_number"] == number
    assert parcel["items"] == [
        {"sku": "MUG", "quantity": 2, "location": "north"},
        {"sku": "TEA", "quantity": 1, "location": "default"},
    ]
    assert (parcel["received"], parcel["received_at"]) == ([], None)

    await returned.send(returned.label_request())
    again = await returned.answers("shipping.return_label_created", count=2)
    assert [answer["return_tracking_number"] for answer in again] == [number, number]
    assert [p["id"] for p in await oms.shipping_returns(order_id=returned.order_id)] == [
        returned.id
    ]
    # The warehouse's queue: returns to receive, also per location they go back to.
    assert returned.id in {p["id"] for p in await oms.shipping_returns(status="label_created")}
    north = await oms.shipping_returns(status="label_created", location="north")
    assert returned.id in {p["id"] for p in north}
    assert returned.id not in {p["id"] for p in await oms.shipping_returns(location="south")}


async def test_receiving_less_than_announced_books_in_and_announces_what_arrived(
    oms: OmsClient, a_return: Callable[[], AReturn]
) -> None:
    returned = a_return()
    await returned.labelled()

    response = await oms.receive_return(
        returned.id, [("MUG", 1, "resellable"), ("TEA", 1, "damaged")]
    )

    assert response.status_code == 200, response.text
    parcel = response.json()
    received = [
        {"sku": "MUG", "quantity": 1, "condition": "resellable"},
        {"sku": "TEA", "quantity": 1, "condition": "damaged"},
    ]
    assert (parcel["status"], parcel["received"]) == ("received", received)
    assert parcel["received_at"] is not None
    [announced] = await returned.answers("shipping.return_received")
    assert (announced["order_id"], announced["lines"]) == (returned.order_id, received)
    assert await oms.shipping_return(returned.id) == parcel
    waiting = {p["id"] for p in await oms.shipping_returns(status="label_created")}
    assert returned.id not in waiting
    assert returned.id in {p["id"] for p in await oms.shipping_returns(status="received")}


async def test_receiving_a_return_twice_is_refused_and_keeps_the_first_receipt(
    oms: OmsClient, a_return: Callable[[], AReturn]
) -> None:
    returned = a_return()
    await returned.labelled()
    first = await oms.receive_return(returned.id, [("MUG", 2, "resellable")])
    assert first.status_code == 200, first.text

    second = await oms.receive_return(returned.id, [("TEA", 1, "damaged")])

    assert second.status_code == 409, second.text
    assert second.json()["type"] == "/problems/return-already-received"
    parcel = await oms.shipping_return(returned.id)
    assert parcel["received"] == [{"sku": "MUG", "quantity": 2, "condition": "resellable"}]
    assert parcel["updated_at"] == first.json()["updated_at"]


async def test_receiving_a_cancelled_return_is_refused(
    oms: OmsClient, a_return: Callable[[], AReturn]
) -> None:
    returned = a_return()
    await returned.labelled()
    await returned.cancel()
    await returned.answers("shipping.return_cancelled")
    assert (await oms.shipping_return(returned.id))["status"] == "cancelled"

    refused = await oms.receive_return(returned.id, [("MUG", 1, "resellable")])

    assert refused.status_code == 409, refused.text
    assert refused.json()["type"] == "/problems/return-cancelled"
    parcel = await oms.shipping_return(returned.id)
    assert (parcel["status"], parcel["received"]) == ("cancelled", [])


async def test_a_cancellation_after_the_receipt_answers_with_the_receipt(
    oms: OmsClient, a_return: Callable[[], AReturn]
) -> None:
    returned = a_return()
    await returned.labelled()
    received = await oms.receive_return(returned.id, [("MUG", 1, "damaged")])
    assert received.status_code == 200, received.text
    [first] = await returned.answers("shipping.return_received")

    await returned.cancel()

    answers = await returned.answers("shipping.return_received", count=2)
    assert (
        answers[1]["lines"]
        == first["lines"]
        == [{"sku": "MUG", "quantity": 1, "condition": "damaged"}]
    )
    assert (await oms.shipping_return(returned.id))["status"] == "received"
    assert returned.said("shipping.return_cancelled") == []


async def test_a_cancellation_before_the_label_request_makes_the_late_request_answer_cancelled(
    oms: OmsClient, a_return: Callable[[], AReturn]
) -> None:
    returned = a_return()

    await returned.cancel()
    await returned.answers("shipping.return_cancelled")
    await returned.send(returned.label_request())

    await returned.answers("shipping.return_cancelled", count=2)
    parcel = await oms.shipping_return(returned.id)
    assert (parcel["status"], parcel["return_tracking_number"]) == ("cancelled", None)
    assert returned.said("shipping.return_label_created") == []
    refused = await oms.receive_return(returned.id, [("MUG", 1, "resellable")])
    assert refused.status_code == 409, refused.text


async def test_a_receipt_the_return_does_not_allow_is_a_422_naming_the_field_and_books_nothing(
    oms: OmsClient, a_return: Callable[[], AReturn]
) -> None:
    returned = a_return()
    # MUG left from two locations: the units of a SKU count together.
    await returned.labelled(("MUG", 2, "north"), ("MUG", 1, "south"), ("TEA", 1, "default"))

    async def refused(*items: tuple[str, int, str]) -> list[str]:
        return errors_of(await oms.receive_return(returned.id, items))

    assert await refused(("MUG", 1, "resellable"), ("CUP", 1, "resellable")) == ["items[1].sku"]
    assert await refused(("MUG", 2, "resellable"), ("MUG", 2, "damaged")) == ["items[1].quantity"]
    assert await refused(("TEA", 2, "resellable")) == ["items[0].quantity"]
    assert await refused(("TEA", -1, "damaged")) == ["items[0].quantity"]
    assert await refused(("TEA", 1, "broken")) == ["items[0].condition"]
    assert await refused(("MUG", 0, "resellable"), ("TEA", 0, "damaged")) == ["items"]
    assert errors_of(await oms.post_receipt(returned.id, {"items": []})) == ["items"]
    one = await oms.receive_return(returned.id, [("CUP", 1, "resellable")])
    assert (one.json()["type"], one.json()["field"]) == (
        "/problems/validation-error",
        "items[0].sku",
    )
    # Nothing of it was booked: the return still waits, and takes a valid receipt.
    assert (await oms.shipping_return(returned.id))["status"] == "label_created"
    assert returned.said("shipping.return_received") == []
    accepted = await oms.receive_return(
        returned.id, [("MUG", 2, "resellable"), ("MUG", 1, "damaged")]
    )
    assert accepted.status_code == 200, accepted.text


async def test_an_unknown_return_is_not_found_and_the_warehouse_api_is_for_staff(
    oms: OmsClient,
) -> None:
    unknown = str(uuid.uuid4())

    missing = await oms.receive_return(unknown, [("MUG", 1, "resellable")])

    assert missing.status_code == 404, missing.text
    assert missing.json()["type"] == "/problems/return-not-found"
    shown = await oms.http.get(f"{oms.urls['shipping']}/returns/{unknown}", headers=oms.admin())
    assert shown.status_code == 404
    as_customer = await oms.http.get(f"{oms.urls['shipping']}/returns", headers=oms.as_customer())
    assert as_customer.status_code == 403
    anonymous = await oms.http.post(
        f"{oms.urls['shipping']}/returns/{unknown}/receive", json={"items": []}
    )
    assert anonymous.status_code == 401


async def test_deleting_the_order_erases_the_pickup_address_of_its_return(
    oms: OmsClient, a_return: Callable[[], AReturn], db: asyncpg.Connection
) -> None:
    returned = a_return()
    await returned.labelled()
    address = await db.fetchval(
        "SELECT pickup_address FROM shipping.returns WHERE id = $1", returned.id
    )
    assert "Ada Lovelace" in address

    await returned.send(order_msgs.OrderDeleted(order_id=returned.order_id))

    # Written back as JSON null, as the dispatch notes' addresses are.
    erased = await eventually(
        lambda: db.fetchval(
            "SELECT coalesce(pickup_address::text, 'gone') FROM shipping.returns WHERE id = $1",
            returned.id,
        ),
        lambda text: "Ada Lovelace" not in text,
        WAIT,
        "the return's pickup address erased",
    )
    assert erased in ("null", "gone")
    assert (await oms.shipping_return(returned.id))["status"] == "label_created"
