"""The shipping service's returns on an in-memory unit of work: what the order
service's commands (a label, a cancellation) and the warehouse's receipt do to a
return parcel, and what each answers."""

from __future__ import annotations

import re

import pytest

from oms_contracts import order as order_msgs
from oms_contracts import shipping as msgs
from oms_contracts.common import ReturnLine, ShippingAddress
from oms_shipping.domain.returns import (
    Condition,
    InvalidReceipt,
    ReceivedLine,
    ReturnAlreadyReceived,
    ReturnStatus,
)
from oms_shipping.handlers import returns as use_cases
from oms_shipping.handlers.messages import handlers, order_deleted
from oms_shipping.settings import ShippingSettings

from .fakes import FakeShippingUnitOfWork

HOME = ShippingAddress(
    name="Ada", line1="1 Main St", city="Berlin", postal_code="10115", country="DE"
)
RESELLABLE, DAMAGED = Condition.RESELLABLE, Condition.DAMAGED


def label(return_id: str = "r-1", order_id: str = "o-1") -> msgs.CreateReturnLabel:
    return msgs.CreateReturnLabel(
        order_id=order_id,
        return_id=return_id,
        lines=[
            ReturnLine(sku="MUG", quantity=2, location="north"),
            ReturnLine(sku="TEA", quantity=1),
        ],
        shipping_address=HOME,
    )


def cancel(return_id: str = "r-1") -> msgs.CancelReturn:
    return msgs.CancelReturn(order_id="o-1", return_id=return_id)


def answers(uow: FakeShippingUnitOfWork) -> list[tuple[str, dict[str, object]]]:
    """(routing key, data) of what was sent, without the order and return ids."""
    return [
        (
            message.routing_key,
            message.model_dump(mode="json", exclude={"order_id", "return_id"}),
        )
        for message in uow.sent
    ]


async def labelled(uow: FakeShippingUnitOfWork) -> str:
    """Return r-1 of order o-1 (2 MUG from north, 1 TEA from default) with its label;
    its tracking number."""
    await use_cases.create_return_label(label(), uow)
    tracking_number = str(uow.sent[0].model_dump()["return_tracking_number"])
    uow.sent.clear()
    return tracking_number


def test_the_service_handles_the_label_and_the_cancellation_of_returns() -> None:
    registered = handlers(ShippingSettings())

    assert registered[msgs.CreateReturnLabel] is use_cases.create_return_label
    assert registered[msgs.CancelReturn] is use_cases.cancel_return


async def test_a_label_request_creates_the_return_parcel_and_announces_its_tracking_number() -> (
    None
):
    uow = FakeShippingUnitOfWork()

    await use_cases.create_return_label(label(), uow)

    [(kind, data)] = answers(uow)
    assert kind == "shipping.return_label_created"
    # Like a carrier's tracking number for an outbound parcel.
    assert re.fullmatch(r"SIM\d{12}", str(data["return_tracking_number"]))
    parcel = uow.returns.by_id["r-1"]
    assert (parcel.order_id, parcel.status) == ("o-1", ReturnStatus.LABEL_CREATED)
    assert [(line.sku, line.quantity, line.location) for line in parcel.lines] == [
        ("MUG", 2, "north"),
        ("TEA", 1, "default"),
    ]
    assert parcel.pickup_address is not None and parcel.pickup_address.line1 == HOME.line1
    assert (uow.sent[0].model_dump()["order_id"], uow.sent[0].model_dump()["return_id"]) == (
        "o-1",
        "r-1",
    )


async def test_the_same_label_request_again_answers_the_same_label_and_makes_no_other() -> None:
    uow = FakeShippingUnitOfWork()
    tracking_number = await labelled(uow)

    await use_cases.create_return_label(label(), uow)

    assert answers(uow) == [
        ("shipping.return_label_created", {"return_tracking_number": tracking_number})
    ]
    assert list(uow.returns.by_id) == ["r-1"]


async def test_each_return_gets_a_label_of_its_own() -> None:
    uow = FakeShippingUnitOfWork()

    await use_cases.create_return_label(label("r-1"), uow)
    await use_cases.create_return_label(label("r-2"), uow)

    numbers = {str(message.model_dump()["return_tracking_number"]) for message in uow.sent}
    assert len(numbers) == 2


async def test_a_cancellation_before_the_goods_arrive_cancels_the_return() -> None:
    uow = FakeShippingUnitOfWork()
    await labelled(uow)

    await use_cases.cancel_return(cancel(), uow)

    assert answers(uow) == [("shipping.return_cancelled", {})]
    assert uow.returns.by_id["r-1"].status is ReturnStatus.CANCELLED


async def test_a_cancellation_before_the_label_makes_the_late_label_request_answer_cancelled() -> (
    None
):
    uow = FakeShippingUnitOfWork()

    await use_cases.cancel_return(cancel(), uow)
    await use_cases.create_return_label(label(), uow)

    assert answers(uow) == [
        ("shipping.return_cancelled", {}),
        ("shipping.return_cancelled", {}),
    ]
    parcel = uow.returns.by_id["r-1"]
    assert (parcel.status, parcel.return_tracking_number) == (ReturnStatus.CANCELLED, None)
    assert parcel.pickup_address is None


async def test_a_cancellation_after_the_receipt_answers_with_what_was_received() -> None:
    uow = FakeShippingUnitOfWork()
    await labelled(uow)
    await use_cases.receive(
        "r-1", [ReceivedLine("MUG", 1, RESELLABLE), ReceivedLine("TEA", 1, DAMAGED)], uow
    )

    await use_cases.cancel_return(cancel(), uow)

    received = {
        "lines": [
            {"sku": "MUG", "quantity": 1, "condition": "resellable"},
            {"sku": "TEA", "quantity": 1, "condition": "damaged"},
        ]
    }
    assert answers(uow) == [
        ("shipping.return_received", received),
        ("shipping.return_received", received),
    ]
    assert uow.returns.by_id["r-1"].status is ReturnStatus.RECEIVED


async def test_the_warehouse_receipt_announces_what_arrived() -> None:
    uow = FakeShippingUnitOfWork()
    await labelled(uow)

    received = await use_cases.receive("r-1", [ReceivedLine("MUG", 1, DAMAGED)], uow)

    assert received.status is ReturnStatus.RECEIVED
    assert answers(uow) == [
        (
            "shipping.return_received",
            {"lines": [{"sku": "MUG", "quantity": 1, "condition": "damaged"}]},
        )
    ]


async def test_a_receipt_for_an_unknown_return_is_not_found() -> None:
    uow = FakeShippingUnitOfWork()

    with pytest.raises(use_cases.ReturnNotFound):
        await use_cases.receive("r-404", [ReceivedLine("MUG", 1, RESELLABLE)], uow)

    assert (uow.sent, uow.returns.by_id) == ([], {})


async def test_a_refused_receipt_announces_nothing_and_commits_nothing() -> None:
    uow = FakeShippingUnitOfWork()
    await labelled(uow)

    with pytest.raises(InvalidReceipt):
        await use_cases.receive("r-1", [ReceivedLine("MUG", 3, RESELLABLE)], uow)
    await use_cases.receive("r-1", [ReceivedLine("MUG", 2, RESELLABLE)], uow)
    with pytest.raises(ReturnAlreadyReceived):
        await use_cases.receive("r-1", [ReceivedLine("TEA", 1, RESELLABLE)], uow)

    assert [kind for kind, _ in answers(uow)] == ["shipping.return_received"]
    assert uow.returns.by_id["r-1"].received == [ReceivedLine("MUG", 2, RESELLABLE)]


async def test_deleting_the_order_erases_the_pickup_address_of_its_returns_only() -> None:
    uow = FakeShippingUnitOfWork()
    await use_cases.create_return_label(label("r-1", order_id="o-1"), uow)
    await use_cases.create_return_label(label("r-2", order_id="o-1"), uow)
    await use_cases.create_return_label(label("r-3", order_id="o-2"), uow)
    uow.sent.clear()

    await order_deleted(order_msgs.OrderDeleted(order_id="o-1"), uow)

    addresses = {rid: parcel.pickup_address for rid, parcel in uow.returns.by_id.items()}
    assert (addresses["r-1"], addresses["r-2"]) == (None, None)
    assert addresses["r-3"] is not None
    assert uow.sent == []
