"""The message catalog and the envelope every message travels in."""

from __future__ import annotations

import json
import uuid

import pytest
from pydantic import ValidationError

from oms_contracts import (
    CATALOG,
    COMMANDS_EXCHANGE,
    EVENTS_EXCHANGE,
    Command,
    Envelope,
    Event,
    Message,
    message_class,
)
from oms_contracts.order import OrderCreated, OrderPaid

from .samples import SAMPLES

SERVICES = {"order", "inventory", "payment", "shipping"}
ALL_MESSAGES = sorted(CATALOG.items())


# -- the catalog -----------------------------------------------------------------------


def test_the_catalog_lists_every_message_under_its_own_routing_key() -> None:
    assert CATALOG
    for routing_key, cls in CATALOG.items():
        assert cls.routing_key == routing_key
        assert message_class(routing_key) is cls


@pytest.mark.parametrize(("routing_key", "cls"), ALL_MESSAGES, ids=[k for k, _ in ALL_MESSAGES])
def test_every_routing_key_is_owning_service_dot_name_from_the_defining_module(
    routing_key: str, cls: type[Message]
) -> None:
    service, _, name = routing_key.partition(".")

    assert service in SERVICES
    assert name and "." not in name
    assert cls.__module__ == f"oms_contracts.{service}"


@pytest.mark.parametrize(("routing_key", "cls"), ALL_MESSAGES, ids=[k for k, _ in ALL_MESSAGES])
def test_commands_go_to_the_commands_exchange_and_events_to_the_events_exchange(
    routing_key: str, cls: type[Message]
) -> None:
    if issubclass(cls, Command):
        assert (cls.kind, cls.exchange) == ("command", "oms.commands")
    else:
        assert issubclass(cls, Event)
        assert (cls.kind, cls.exchange) == ("event", "oms.events")


def test_the_exchange_names_are_the_documented_ones() -> None:
    assert (COMMANDS_EXCHANGE, EVENTS_EXCHANGE) == ("oms.commands", "oms.events")


def test_the_routing_key_is_not_part_of_a_messages_data() -> None:
    for cls in CATALOG.values():
        assert "routing_key" not in cls.model_fields
        assert "kind" not in cls.model_fields


@pytest.mark.parametrize(
    "routing_key",
    [
        "order.created",
        "order.paid",
        "order.shipped",
        "order.completed",
        "order.cancelled",
        "inventory.stock_reserved",
        "inventory.low_stock",
        "inventory.replenishment_requested",
        "payment.authorized",
        "payment.captured",
        "shipping.shipment_dispatched",
        "shipping.delivered",
    ],
)
def test_the_public_events_of_the_design_are_published_under_their_documented_keys(
    routing_key: str,
) -> None:
    assert routing_key in CATALOG
    assert issubclass(CATALOG[routing_key], Event)


def test_an_unknown_routing_key_has_no_message_class() -> None:
    with pytest.raises(KeyError):
        message_class("order.exploded")


# -- the envelope ----------------------------------------------------------------------


@pytest.mark.parametrize("message", SAMPLES, ids=[type(m).__name__ for m in SAMPLES])
def test_a_message_survives_a_trip_over_the_wire_unchanged(message: Message) -> None:
    envelope = Envelope.wrap(message)

    received = Envelope.model_validate_json(envelope.model_dump_json())

    assert received.payload(type(message)) == message


def test_the_envelope_names_the_message_type_and_version() -> None:
    message = SAMPLES[0]

    received = Envelope.model_validate_json(Envelope.wrap(message).model_dump_json())

    assert received.type == "order.created"
    assert message_class(received.type) is OrderCreated
    assert received.version == OrderCreated.version == 1


def test_each_envelope_gets_its_own_uuid_message_id() -> None:
    first = Envelope.wrap(SAMPLES[0])
    second = Envelope.wrap(SAMPLES[0])

    received = Envelope.model_validate_json(first.model_dump_json())

    assert isinstance(received.message_id, uuid.UUID)
    assert received.message_id == first.message_id
    assert first.message_id != second.message_id


def test_the_envelope_time_is_timezone_aware_before_and_after_the_wire() -> None:
    envelope = Envelope.wrap(SAMPLES[0])

    received = Envelope.model_validate_json(envelope.model_dump_json())

    assert envelope.occurred_at.utcoffset() is not None
    assert received.occurred_at.utcoffset() is not None
    assert received.occurred_at == envelope.occurred_at


def test_the_envelope_keeps_the_correlation_and_causation_ids() -> None:
    envelope = Envelope.wrap(SAMPLES[0], correlation_id="order-1", causation_id="msg-41")

    received = Envelope.model_validate_json(envelope.model_dump_json())

    assert (received.correlation_id, received.causation_id) == ("order-1", "msg-41")


def test_the_envelope_data_is_plain_json_of_the_message_fields() -> None:
    envelope = Envelope.wrap(SAMPLES[0])

    wire = json.loads(envelope.model_dump_json())

    assert wire["data"]["created_at"] == "2025-03-01T09:30:00Z"
    assert wire["data"]["lines"] == [{"sku": "MUG", "quantity": 2}]
    assert "routing_key" not in wire["data"]


def test_a_reader_ignores_fields_it_does_not_know_yet() -> None:
    wire = json.dumps(
        {
            "message_id": str(uuid.uuid4()),
            "type": "order.paid",
            "version": 1,
            "occurred_at": "2025-03-01T09:30:00+00:00",
            "trace_flags": "01",
            "data": {
                "order_id": "order-1",
                "payment_id": "pay-1",
                "total": 2500,
                "currency": "EUR",
                "loyalty_points": 25,
            },
        }
    )

    paid = Envelope.model_validate_json(wire).payload(OrderPaid)

    assert paid == OrderPaid(order_id="order-1", payment_id="pay-1", total=2500, currency="EUR")


def test_a_message_missing_a_required_field_is_rejected() -> None:
    envelope = Envelope(
        type="order.paid",
        version=1,
        data={"order_id": "order-1", "total": 2500, "currency": "EUR"},
    )

    with pytest.raises(ValidationError, match="payment_id"):
        envelope.payload(OrderPaid)


def test_an_envelope_without_data_is_rejected() -> None:
    wire = json.dumps({"type": "order.paid", "version": 1})

    with pytest.raises(ValidationError, match="data"):
        Envelope.model_validate_json(wire)
