"""The event catalog: published files match the models, and the compatibility check
refuses changes that would break a subscriber of the same message version."""

from __future__ import annotations

import copy
import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator

from oms_contracts import CATALOG, EVENTS_EXCHANGE, Envelope, Event, Message
from oms_contracts.catalog import (
    ASYNCAPI_FILE,
    breaking_changes,
    compare,
    generate,
    main,
    message_schema,
    published_root,
    published_schema,
    read_catalog,
    schema_path,
)
from oms_contracts.common import OrderLine, ShippingAddress
from oms_contracts.order import OrderCreated
from oms_contracts.payment import PaymentAuthorizationFailed

from .samples import SAMPLES

# The official AsyncAPI 3.0.0 JSON Schema, vendored (see the file's "source").
ASYNCAPI_SPEC = json.loads(
    (Path(__file__).parent / "asyncapi-3.0.0.schema.json").read_text(encoding="utf-8")
)["schema"]


def order_created_schema() -> dict[str, Any]:
    return copy.deepcopy(message_schema(OrderCreated))


# -- the published files ---------------------------------------------------------------


def test_the_published_catalog_is_what_the_models_generate() -> None:
    report = compare(read_catalog(), generate())
    assert report.breaking == []
    assert report.stale == [], "run: python -m oms_contracts.catalog write"


def test_every_message_has_a_published_schema_for_its_version() -> None:
    for routing_key, message in CATALOG.items():
        schema = published_schema(routing_key, message.version)
        assert schema is not None, routing_key
        assert schema["x-oms-routing-key"] == routing_key
        assert schema["title"] == message.__name__


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda m: m.routing_key)
def test_what_a_model_publishes_validates_against_its_published_schema(sample: Message) -> None:
    schema = published_schema(sample.routing_key, sample.version)
    assert schema is not None
    Draft202012Validator(schema).validate(sample.model_dump(mode="json"))


def test_a_published_schema_rejects_data_missing_a_required_field() -> None:
    schema = published_schema("order.created", 1)
    assert schema is not None
    data = SAMPLES[0].model_dump(mode="json")
    del data["customer_id"]
    assert not Draft202012Validator(schema).is_valid(data)


@pytest.mark.parametrize("name", ["order.nope", "../asyncapi", "order.created/../x", ""])
def test_an_unknown_or_malformed_schema_name_finds_nothing(name: str) -> None:
    assert published_schema(name, 1) is None
    assert published_schema("order.created", 99) is None


def test_the_asyncapi_document_is_valid_asyncapi_3() -> None:
    document = json.loads(published_root().joinpath(ASYNCAPI_FILE).read_text(encoding="utf-8"))
    validator = Draft7Validator(ASYNCAPI_SPEC)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []


def test_the_asyncapi_document_has_a_channel_per_event_on_the_events_exchange() -> None:
    document = json.loads(published_root().joinpath(ASYNCAPI_FILE).read_text(encoding="utf-8"))
    events = {key for key, message in CATALOG.items() if issubclass(message, Event)}
    on_events_exchange = {
        channel["address"]
        for channel in document["channels"].values()
        if channel["bindings"]["amqp"]["exchange"]["name"] == EVENTS_EXCHANGE
    }
    assert on_events_exchange == events
    internal = {
        channel["address"]
        for channel in document["channels"].values()
        if {"name": "internal"} in channel.get("tags", [])
    }
    assert internal == set(CATALOG) - events


def test_an_asyncapi_message_is_the_envelope_with_the_data_schema() -> None:
    document = json.loads(published_root().joinpath(ASYNCAPI_FILE).read_text(encoding="utf-8"))
    message = document["components"]["messages"]["order.created.v1"]
    envelope_ref, specifics = message["payload"]["allOf"]
    assert envelope_ref == {"$ref": "#/components/schemas/Envelope"}
    assert specifics["properties"]["type"] == {"const": "order.created"}
    assert specifics["properties"]["data"] == {"$ref": "#/components/schemas/OrderCreated"}
    envelope = document["components"]["schemas"]["Envelope"]
    assert set(envelope["required"]) == set(Envelope.model_fields)


# -- breaking_changes --------------------------------------------------------------------


def test_a_removed_field_is_breaking() -> None:
    new = order_created_schema()
    del new["properties"]["customer_id"]
    new["required"].remove("customer_id")
    assert [str(c) for c in breaking_changes(order_created_schema(), new)] == [
        "removed field `customer_id`"
    ]


def test_a_retyped_field_is_breaking() -> None:
    new = order_created_schema()
    new["properties"]["order_id"] = {"type": "integer"}
    [change] = breaking_changes(order_created_schema(), new)
    assert (change.kind, change.field) == ("retyped", "order_id")
    assert "string -> integer" in change.detail


def test_a_changed_format_is_breaking() -> None:
    new = order_created_schema()
    new["properties"]["created_at"]["format"] = "date"
    assert [(c.kind, c.field) for c in breaking_changes(order_created_schema(), new)] == [
        ("retyped", "created_at")
    ]


def test_a_newly_required_field_is_breaking() -> None:
    new = order_created_schema()
    new["properties"]["channel"] = {"type": "string"}
    new["required"].append("channel")
    assert [(c.kind, c.field) for c in breaking_changes(order_created_schema(), new)] == [
        ("required", "channel")
    ]


def test_changes_inside_nested_objects_and_array_items_are_found() -> None:
    new = order_created_schema()
    del new["$defs"]["ShippingAddress"]["properties"]["city"]
    new["$defs"]["OrderLine"]["properties"]["quantity"] = {"type": "string"}
    new["$defs"]["ShippingAddress"]["required"].append("line2")
    found = {(c.kind, c.field) for c in breaking_changes(order_created_schema(), new)}
    assert found == {
        ("removed", "shipping_address.city"),
        ("retyped", "lines[].quantity"),
        ("required", "shipping_address.line2"),
    }


def test_a_nullable_field_that_becomes_non_null_is_breaking() -> None:
    old = copy.deepcopy(message_schema(PaymentAuthorizationFailed))
    new = copy.deepcopy(old)
    new["properties"]["decline_code"] = {"type": "string"}
    [change] = breaking_changes(old, new)
    assert (change.kind, change.field) == ("retyped", "decline_code")


def test_an_added_optional_field_is_not_breaking() -> None:
    new = order_created_schema()
    new["properties"]["channel"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    new["$defs"]["ShippingAddress"]["properties"]["region"] = {"type": "string"}
    assert breaking_changes(order_created_schema(), new) == []


def test_an_unchanged_schema_has_no_breaking_changes() -> None:
    for message in CATALOG.values():
        assert breaking_changes(message_schema(message), message_schema(message)) == []


# -- the check against the published baseline -------------------------------------------


class OrderCreatedWithoutCustomer(Event):
    """order.created as if someone deleted `customer_id` from the model."""

    routing_key = "order.created"
    order_id: str
    lines: list[OrderLine]
    shipping_address: ShippingAddress
    created_at: datetime


class OrderCreatedV2(OrderCreatedWithoutCustomer):
    version = 2


def catalog_with(replacement: type[Message]) -> dict[str, str]:
    messages = [m for m in CATALOG.values() if m.routing_key != replacement.routing_key]
    return generate([*messages, replacement])


def test_removing_a_field_without_a_new_version_fails_the_check() -> None:
    report = compare(read_catalog(), catalog_with(OrderCreatedWithoutCustomer))
    assert report.breaking == [f"{schema_path('order.created', 1)}: removed field `customer_id`"]


def test_removing_a_field_in_a_new_version_passes_the_check_once_written() -> None:
    generated = catalog_with(OrderCreatedV2)
    report = compare(read_catalog(), generated)
    assert report.breaking == []
    assert schema_path("order.created", 2) in report.stale
    # The v1 schema stays published for readers that still receive v1.
    assert schema_path("order.created", 1) not in generated
    written = {**read_catalog(), **generated}
    assert compare(written, generated).ok


def test_dropping_a_message_type_entirely_fails_the_check() -> None:
    generated = {k: v for k, v in generate().items() if "order.completed" not in k}
    report = compare(read_catalog(), generated)
    assert len(report.breaking) == 1
    assert report.breaking[0].startswith(schema_path("order.completed", 1))


@pytest.fixture
def catalog_copy(tmp_path: Path) -> Path:
    shutil.copytree(Path(str(published_root())), tmp_path / "catalog")
    return tmp_path / "catalog"


def test_check_passes_on_a_fresh_copy_of_the_catalog(catalog_copy: Path) -> None:
    assert main(["check", str(catalog_copy)]) == 0


def test_check_fails_on_a_stale_catalog_until_write_updates_it(
    catalog_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (catalog_copy / schema_path("order.paid", 1)).unlink()
    assert main(["check", str(catalog_copy)]) == 1
    assert "stale:" in capsys.readouterr().err
    assert main(["write", str(catalog_copy)]) == 0
    assert main(["check", str(catalog_copy)]) == 0


def test_write_refuses_a_breaking_change_and_leaves_the_files_alone(
    catalog_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As if the published v1 had a field the model no longer has.
    path = catalog_copy / schema_path("order.created", 1)
    published = json.loads(path.read_text())
    published["properties"]["legacy_ref"] = {"type": "string"}
    before = json.dumps(published, indent=2) + "\n"
    path.write_text(before)

    assert main(["write", str(catalog_copy)]) == 1
    assert "removed field `legacy_ref`" in capsys.readouterr().err
    assert path.read_text() == before
    assert main(["check", str(catalog_copy)]) == 1
