"""The shipping service's handlers on an in-memory unit of work: what each command
does to the order's parcels, and what it answers (every parcel's message naming its
fulfillment id and location; the order's requests answered once)."""

from __future__ import annotations

from typing import Any

import pytest

from oms_contracts import Message
from oms_contracts import order as order_msgs
from oms_contracts import shipping as msgs
from oms_contracts.common import OrderLine, Parcel, ShippingAddress
from oms_shipping.domain.model import NotCreatedYet, ShipmentStatus
from oms_shipping.handlers import messages
from oms_shipping.handlers import shipments as use_cases
from oms_shipping.settings import ShippingSettings

from .fakes import FakeShippingUnitOfWork

HOME = ShippingAddress(
    name="Ada", line1="1 Main St", city="Berlin", postal_code="10115", country="DE"
)
OFFICE = HOME.model_copy(update={"line1": "9 Work Rd"})
SETTINGS = ShippingSettings()
create_shipment = messages.create_shipment_handler(SETTINGS)


def lines(**quantities: int) -> list[OrderLine]:
    return [OrderLine(sku=sku, quantity=q) for sku, q in quantities.items()]


def create(
    fulfillment_id: str | None, location: str = "default", order_id: str = "o-1", **quantities: int
) -> msgs.CreateShipment:
    return msgs.CreateShipment(
        order_id=order_id,
        fulfillment_id=fulfillment_id,
        location=location,
        lines=lines(**(quantities or {"MUG": 1})),
        shipping_address=HOME,
    )


def said(message: Message) -> tuple[Any, ...]:
    """(type, shipment id, fulfillment id, location) of a parcel's message."""
    data = message.model_dump()
    return (message.routing_key, data["shipment_id"], data["fulfillment_id"], data["location"])


async def two_parcels(uow: FakeShippingUnitOfWork) -> None:
    """Order o-1's parcels f-north (shipment s-1, 2 MUG) and f-south (s-2, 1 TEA)."""
    await create_shipment(create("f-north", "north", MUG=2), uow)
    await create_shipment(create("f-south", "south", TEA=1), uow)
    uow.sent.clear()


async def dispatched(uow: FakeShippingUnitOfWork, fulfillment_id: str) -> None:
    await use_cases.dispatch(uow.shipments.parcel(fulfillment_id).id, "simpost", uow)
    uow.sent.clear()


# -- creating --------------------------------------------------------------------------


async def test_each_parcel_of_an_order_gets_a_shipment_and_is_announced_with_its_location() -> None:
    uow = FakeShippingUnitOfWork()

    await create_shipment(create("f-north", "north", MUG=2), uow)
    await create_shipment(create("f-south", "south", TEA=1), uow)

    assert [said(m) for m in uow.sent] == [
        ("shipping.shipment_created", "s-1", "f-north", "north"),
        ("shipping.shipment_created", "s-2", "f-south", "south"),
    ]
    north, south = uow.shipments.parcel("f-north"), uow.shipments.parcel("f-south")
    assert (north.location, [(line.sku, line.quantity) for line in north.lines]) == (
        "north",
        [("MUG", 2)],
    )
    assert (south.status, south.address and south.address.city) == ("created", "Berlin")


async def test_a_repeated_creation_request_makes_no_second_shipment_and_answers_again() -> None:
    uow = FakeShippingUnitOfWork()
    await create_shipment(create("f-north", "north"), uow)

    await create_shipment(create("f-north", "north"), uow)

    assert len(uow.shipments.by_id) == 1
    assert [said(m) for m in uow.sent] == [
        ("shipping.shipment_created", "s-1", "f-north", "north")
    ] * 2


async def test_a_creation_request_without_a_fulfillment_id_is_the_order_s_only_parcel() -> None:
    uow = FakeShippingUnitOfWork()
    legacy = msgs.CreateShipment(order_id="o-1", lines=lines(MUG=1), shipping_address=HOME)

    await create_shipment(legacy, uow)
    await create_shipment(legacy, uow)

    assert [said(m) for m in uow.sent] == [
        ("shipping.shipment_created", "s-1", "o-1", "default")
    ] * 2


async def test_a_parcel_to_a_country_shipping_does_not_serve_fails_naming_the_parcel() -> None:
    uow = FakeShippingUnitOfWork()
    handler = messages.create_shipment_handler(ShippingSettings(shipping_countries="FR"))

    await handler(create("f-north", "north"), uow)

    assert [said(m) for m in uow.sent] == [
        ("shipping.shipment_created", "s-1", "f-north", "north"),
        ("shipping.shipment_failed", "s-1", "f-north", "north"),
    ]
    failed = uow.sent[1]
    assert isinstance(failed, msgs.ShipmentFailed) and failed.reason == "destination_not_served"


async def test_with_auto_dispatch_each_parcel_leaves_at_once_with_its_own_tracking_number() -> None:
    uow = FakeShippingUnitOfWork()
    handler = messages.create_shipment_handler(ShippingSettings(auto_dispatch=True))

    await handler(create("f-north", "north"), uow)
    await handler(create("f-south", "south"), uow)

    dispatches = [m for m in uow.sent if isinstance(m, msgs.ShipmentDispatched)]
    assert [(m.fulfillment_id, m.location) for m in dispatches] == [
        ("f-north", "north"),
        ("f-south", "south"),
    ]
    assert dispatches[0].tracking_number != dispatches[1].tracking_number


# -- dispatch (the warehouse, over HTTP) -------------------------------------------------


async def test_dispatching_one_parcel_announces_that_parcel_and_leaves_the_other_waiting() -> None:
    uow = FakeShippingUnitOfWork()
    await two_parcels(uow)

    await use_cases.dispatch(uow.shipments.parcel("f-south").id, "simpost", uow)

    assert [said(m) for m in uow.sent] == [
        ("shipping.shipment_dispatched", "s-2", "f-south", "south")
    ]
    assert uow.shipments.parcel("f-north").status is ShipmentStatus.CREATED


# -- cancelling ------------------------------------------------------------------------


async def test_cancelling_one_parcel_cancels_only_that_one() -> None:
    uow = FakeShippingUnitOfWork()
    await two_parcels(uow)

    await messages.cancel_shipment(
        msgs.CancelShipment(order_id="o-1", reason="customer_request", fulfillment_id="f-north"),
        uow,
    )

    assert [said(m) for m in uow.sent] == [
        ("shipping.shipment_cancelled", "s-1", "f-north", "north")
    ]
    assert uow.shipments.parcel("f-south").status is ShipmentStatus.CREATED


async def test_cancelling_the_order_answers_for_each_parcel_whether_it_left_or_was_cancelled() -> (
    None
):
    uow = FakeShippingUnitOfWork()
    await two_parcels(uow)
    await dispatched(uow, "f-north")

    await messages.cancel_shipment(
        msgs.CancelShipment(order_id="o-1", reason="customer_request"), uow
    )

    assert [said(m) for m in uow.sent] == [
        ("shipping.shipment_created", "s-1", "f-north", "north"),
        ("shipping.shipment_dispatched", "s-1", "f-north", "north"),
        ("shipping.shipment_cancelled", "s-2", "f-south", "south"),
    ]


async def test_a_cancellation_overtaking_the_creation_refuses_the_late_parcel() -> None:
    uow = FakeShippingUnitOfWork()
    await messages.cancel_shipment(
        msgs.CancelShipment(order_id="o-1", reason="payment_timeout", fulfillment_id="f-south"),
        uow,
    )

    await create_shipment(create("f-south", "south"), uow)

    assert [said(m) for m in uow.sent] == [
        ("shipping.shipment_cancelled", "s-1", "f-south", "default"),
        ("shipping.shipment_cancelled", "s-1", "f-south", "south"),
    ]
    assert uow.shipments.parcel("f-south").status is ShipmentStatus.CANCELLED


async def test_a_cancellation_of_an_order_without_parcels_refuses_every_late_parcel() -> None:
    uow = FakeShippingUnitOfWork()
    await messages.cancel_shipment(
        msgs.CancelShipment(order_id="o-1", reason="payment_timeout"), uow
    )

    await create_shipment(create("f-north", "north"), uow)
    await create_shipment(
        msgs.CreateShipment(order_id="o-1", lines=lines(A=1), shipping_address=HOME), uow
    )

    assert [said(m) for m in uow.sent] == [
        ("shipping.shipment_cancelled", "s-1", "o-1", "default"),
        ("shipping.shipment_cancelled", "s-2", "f-north", "north"),
        ("shipping.shipment_cancelled", "s-1", "o-1", "default"),
    ]
    assert {s.status for s in uow.shipments.by_id.values()} == {ShipmentStatus.CANCELLED}


# -- holding, updating, releasing -------------------------------------------------------


async def test_holding_the_order_holds_every_parcel_and_answers_once() -> None:
    uow = FakeShippingUnitOfWork()
    await two_parcels(uow)

    await messages.hold_shipment(msgs.HoldShipment(order_id="o-1"), uow)

    assert uow.sent_types() == ["shipping.shipment_held"]
    assert {s.status for s in uow.shipments.by_id.values()} == {ShipmentStatus.ON_HOLD}


async def test_a_hold_is_refused_once_a_parcel_left() -> None:
    uow = FakeShippingUnitOfWork()
    await two_parcels(uow)
    await dispatched(uow, "f-south")

    await messages.hold_shipment(msgs.HoldShipment(order_id="o-1"), uow)

    assert uow.sent_types() == ["shipping.shipment_hold_refused"]
    refused = uow.sent[0]
    assert isinstance(refused, msgs.ShipmentHoldRefused) and refused.reason == "already_dispatched"
    assert uow.shipments.parcel("f-north").status is ShipmentStatus.CREATED


async def test_a_hold_before_any_parcel_exists_fails_so_that_it_is_retried() -> None:
    uow = FakeShippingUnitOfWork()

    with pytest.raises(NotCreatedYet):
        await messages.hold_shipment(msgs.HoldShipment(order_id="o-1"), uow)

    assert uow.sent == [] and uow.commits == 0


async def test_an_update_creates_new_parcels_cancels_dropped_ones_and_answers_the_new_plan() -> (
    None
):
    uow = FakeShippingUnitOfWork()
    await two_parcels(uow)
    await messages.hold_shipment(msgs.HoldShipment(order_id="o-1"), uow)
    uow.sent.clear()
    plan = [
        Parcel(fulfillment_id="f-north", location="north", lines=lines(MUG=3)),
        Parcel(fulfillment_id="f-east", location="east", lines=lines(CUP=1)),
    ]

    await messages.update_shipment(
        msgs.UpdateShipment(order_id="o-1", lines=lines(MUG=3, CUP=1), parcels=plan), uow
    )

    assert [said(m) for m in uow.sent[:2]] == [
        ("shipping.shipment_cancelled", "s-2", "f-south", "south"),
        ("shipping.shipment_created", "s-3", "f-east", "east"),
    ]
    updated = uow.sent[2]
    assert isinstance(updated, msgs.ShipmentUpdated)
    assert (updated.shipment_id, updated.parcels, updated.lines) == (
        "s-1",
        plan,
        lines(MUG=3, CUP=1),
    )
    assert len(uow.sent) == 3
    assert {
        p.status for p in (uow.shipments.parcel("f-north"), uow.shipments.parcel("f-east"))
    } == {ShipmentStatus.CREATED}


async def test_releasing_the_order_releases_every_held_parcel_and_answers_once() -> None:
    uow = FakeShippingUnitOfWork()
    await two_parcels(uow)
    await messages.hold_shipment(msgs.HoldShipment(order_id="o-1"), uow)
    uow.sent.clear()

    await messages.release_shipment(msgs.ReleaseShipment(order_id="o-1"), uow)

    assert uow.sent_types() == ["shipping.shipment_released"]
    assert {s.status for s in uow.shipments.by_id.values()} == {ShipmentStatus.CREATED}


# -- address and erasure --------------------------------------------------------------


async def test_a_new_address_goes_to_every_parcel_and_is_answered_once() -> None:
    uow = FakeShippingUnitOfWork()
    await two_parcels(uow)

    await messages.change_address(
        msgs.ChangeShippingAddress(order_id="o-1", shipping_address=OFFICE), uow
    )

    assert uow.sent_types() == ["shipping.address_changed"]
    assert {s.address and s.address.line1 for s in uow.shipments.by_id.values()} == {"9 Work Rd"}


async def test_a_new_address_is_refused_for_every_parcel_once_one_left() -> None:
    uow = FakeShippingUnitOfWork()
    await two_parcels(uow)
    await dispatched(uow, "f-north")

    await messages.change_address(
        msgs.ChangeShippingAddress(order_id="o-1", shipping_address=OFFICE), uow
    )

    assert uow.sent_types() == ["shipping.address_change_refused"]
    assert {s.address and s.address.line1 for s in uow.shipments.by_id.values()} == {"1 Main St"}


async def test_deleting_the_order_erases_the_address_of_every_parcel() -> None:
    uow = FakeShippingUnitOfWork()
    await two_parcels(uow)

    await messages.order_deleted(order_msgs.OrderDeleted(order_id="o-1"), uow)

    assert {s.address for s in uow.shipments.by_id.values()} == {None}
    assert uow.sent == []
