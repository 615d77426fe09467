"""Subscribers code against the published catalog: every event the services publish
must match its schema, and the order service serves the catalog.

The recorder (tests/e2e/conftest.py) listens on `oms.events` for the whole session and
checks every event it heard when the session ends; here an order of this test's own
covers the happy path, and the checker is tested on events made to break it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from oms_contracts import Envelope
from oms_contracts.catalog import ASYNCAPI_FILE, published_root, schema_path
from oms_devtools.client import OmsClient, eventually
from oms_order.api.catalog import router as catalog_router
from oms_runtime.problems import install_problem_handlers

from .helpers import EventRecorder, shipped_order
from .run_checks import contract_violations, order_id_of

HAPPY_PATH = {
    "order.created",
    "order.paid",
    "order.shipped",
    "order.completed",
    "inventory.stock_reserved",
    "payment.authorized",
    "payment.captured",
    "shipping.shipment_dispatched",
    "shipping.delivered",
}


@pytest.mark.e2e
async def test_every_event_of_an_order_s_happy_path_matches_its_published_schema(
    oms: OmsClient, event_recorder: EventRecorder
) -> None:
    mug = await oms.create_product(on_hand=3, unit_price=1250)
    order_id, shipment_id = await shipped_order(oms, [(mug["sku"], 1)])
    delivered_at = datetime.now(UTC).isoformat()
    assert (await oms.tracking_event(shipment_id, "delivered", delivered_at)).status_code == 202

    async def seen_for_this_order() -> set[str]:
        return set(event_recorder.of_order(order_id))

    await eventually(seen_for_this_order, HAPPY_PATH.issubset, 20, "the happy path's events")

    of_this_order = [
        (key, body) for key, body in event_recorder.events if order_id_of(body) == order_id
    ]
    assert HAPPY_PATH.issubset(key for key, _ in of_this_order)
    assert contract_violations(of_this_order) == []


# -- the checker itself ------------------------------------------------------------------


def recorded(routing_key: str, data: dict[str, object], version: int = 1) -> tuple[str, bytes]:
    envelope = {"type": routing_key, "version": version, "data": data, "correlation_id": "o-1"}
    return routing_key, Envelope.model_validate(envelope).model_dump_json().encode()


ORDER_CREATED = {
    "order_id": "o-1",
    "customer_id": "alice",
    "lines": [{"sku": "MUG", "quantity": 1}],
    "shipping_address": {
        "name": "Ada",
        "line1": "1 Main St",
        "city": "Berlin",
        "postal_code": "10115",
        "country": "DE",
    },
    "created_at": "2026-11-25T12:00:00Z",
}


def test_the_checker_accepts_an_event_that_matches_its_schema() -> None:
    assert contract_violations([recorded("order.created", ORDER_CREATED)]) == []


def test_the_checker_reports_data_that_breaks_the_schema() -> None:
    bad = {**ORDER_CREATED, "lines": [{"sku": "MUG", "quantity": "one"}]}
    del bad["customer_id"]
    violations = contract_violations([recorded("order.created", bad)])
    assert len(violations) == 2
    assert any("'customer_id' is a required property" in v for v in violations)
    assert any("$.lines[0].quantity" in v for v in violations)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (("order.created", b'{"type": "order.created"}'), "not an envelope"),
        (recorded("order.created", ORDER_CREATED, version=7), "no published schema"),
        (recorded("inventory.reserve_stock", {"order_id": "o", "lines": []}), "a command"),
        (
            ("order.paid", recorded("order.created", ORDER_CREATED)[1]),
            "published with routing key order.paid",
        ),
    ],
)
def test_the_checker_reports_what_a_subscriber_could_not_rely_on(
    event: tuple[str, bytes], reason: str
) -> None:
    violations = contract_violations([event])
    assert any(reason in v for v in violations), violations


# -- serving the catalog -----------------------------------------------------------------


@pytest.fixture
async def catalog_api() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(catalog_router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://order") as client:
        yield client


async def test_the_order_service_serves_the_published_asyncapi_document(
    catalog_api: httpx.AsyncClient,
) -> None:
    response = await catalog_api.get("/events/asyncapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == published_root().joinpath(ASYNCAPI_FILE).read_bytes()


async def test_the_order_service_serves_each_published_schema(
    catalog_api: httpx.AsyncClient,
) -> None:
    response = await catalog_api.get("/events/schemas/order.created/v1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/schema+json"
    expected = published_root().joinpath(schema_path("order.created", 1)).read_bytes()
    assert response.content == expected


@pytest.mark.parametrize(
    "path", ["/events/schemas/order.created/v99", "/events/schemas/order.nope/v1"]
)
async def test_an_unknown_schema_is_a_404_problem(
    catalog_api: httpx.AsyncClient, path: str
) -> None:
    response = await catalog_api.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/schema-not-found"
