"""Input that could once get past the edge, and what a service does with work that
keeps failing: refused with the field named, or failed visibly after its budget."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from oms_devtools.client import ADDRESS, OmsClient, eventually
from oms_devtools.stack import Stack

# Input checks, secrets and headers answer the same whatever the replica count.
pytestmark = [pytest.mark.e2e, pytest.mark.single_pass]

BAD_KEYS = ["été".encode(), b"two words", b"x" * 256, b""]


async def captured_order(oms: OmsClient) -> tuple[str, dict[str, object]]:
    product = await oms.create_product(on_hand=5, unit_price=1000)
    order_id = (await oms.place_order([(product["sku"], 1)])).json()["id"]
    await oms.wait_for_order(order_id, "fulfilling")
    shipment = await oms.shipment_of(order_id)
    assert shipment is not None
    await oms.dispatch(str(shipment["id"]))
    payment = await eventually(
        lambda: oms.payment_of(order_id), lambda p: p["status"] == "captured", 10, "capture"
    )
    return order_id, payment


def names_the_idempotency_key(response: object) -> bool:
    assert hasattr(response, "status_code") and hasattr(response, "json")
    if response.status_code != 422:
        return False
    body = response.json()
    return [e["field"] for e in body["errors"]] == ["Idempotency-Key"] and body["errors"][0][
        "in"
    ] == "header"


@pytest.mark.parametrize("key", BAD_KEYS, ids=["accents", "space", "too-long", "empty"])
async def test_a_bad_idempotency_key_is_refused_at_every_edge_naming_the_header(
    oms: OmsClient, db: asyncpg.Connection, key: bytes
) -> None:
    order_id, payment = await captured_order(oms)
    header = {"Idempotency-Key": key}
    product = await oms.create_product(on_hand=5)

    placed = await oms.http.post(
        f"{oms.urls['order']}/orders",
        headers={**oms.as_customer(), **header},
        json={
            "items": [{"sku": product["sku"], "quantity": 1}],
            "shipping_address": ADDRESS,
            "payment": {"token": "tok_ok"},
        },
    )
    cancelled = await oms.http.post(
        f"{oms.urls['order']}/orders/{order_id}/cancel", headers={**oms.as_customer(), **header}
    )
    refunded = await oms.http.post(
        f"{oms.urls['payment']}/payments/{payment['id']}/refund",
        headers={**oms.admin(), **header},
        json={"amount": 100},
    )
    restocked = await oms.http.post(
        f"{oms.urls['inventory']}/products/{product['sku']}/restock",
        headers={**oms.admin(), **header},
        json={"quantity": 3},
    )

    for response in (placed, cancelled, refunded, restocked):
        assert names_the_idempotency_key(response), response.text
    assert (await oms.product(product["sku"]))["on_hand"] == 5
    orders_of_product = await db.fetchval(
        "SELECT count(*) FROM orders.orders WHERE lines::text LIKE '%' || $1 || '%'",
        product["sku"],
    )
    assert orders_of_product == 0
    assert (
        await db.fetchval(
            "SELECT count(*) FROM payment.refunds WHERE payment_id = $1::uuid", payment["id"]
        )
        == 0
    )


async def test_a_gateway_operation_that_raises_unexpectedly_ends_failed_after_its_budget(
    oms: OmsClient, db: asyncpg.Connection, stack: Stack
) -> None:
    # A refund queued before keys were checked at the edge: the HTTP client cannot
    # even send its key, so every call raises. It used to be retried for ever.
    _, payment = await captured_order(oms)
    refund_id = f"{payment['id']}-été"
    async with db.transaction():
        await db.execute(
            "INSERT INTO payment.refunds (id, payment_id, amount, reason) "
            "VALUES ($1, $2::uuid, 100, 'requested_by_staff')",
            refund_id,
            payment["id"],
        )
        await db.execute(
            "INSERT INTO payment.payment_operations "
            "(payment_id, kind, amount, reference, idempotency_key, attempts) "
            "VALUES ($1::uuid, 'refund', 100, $2, $3, 0)",
            payment["id"],
            refund_id,
            f"{payment['id']}:refund:{refund_id}",
        )

    async def operation() -> asyncpg.Record | None:
        row: asyncpg.Record | None = await db.fetchrow(
            "SELECT status, attempts, last_error FROM payment.payment_operations "
            "WHERE reference = $1",
            refund_id,
        )
        return row

    failed = await eventually(operation, lambda op: op["status"] == "failed", 30, "give up")

    assert failed["attempts"] == 4  # OMS_GATEWAY_MAX_ATTEMPTS' default
    assert "UnicodeEncodeError" in failed["last_error"]
    refunds = await oms.http.get(
        f"{oms.urls['payment']}/payments/{payment['id']}/refunds", headers=oms.admin()
    )
    assert {r["id"]: r["status"] for r in refunds.json()}[refund_id] == "failed"
    given_up = [
        entry
        for name in stack.replica_names("payment")
        for line in stack.logs(name).splitlines()
        if line.startswith("{")
        and (entry := json.loads(line)).get("payment_id") == payment["id"]
        and "giving up refund" in entry["msg"]
    ]
    assert given_up, "no log line for the given-up refund"
    assert given_up[-1]["level"] == "error"
    assert "UnicodeEncodeError" in given_up[-1]["error"]


# -- documents, headers, CORS ----------------------------------------------------------

SERVICE_NAMES = ("order", "inventory", "payment", "shipping")


@pytest.mark.parametrize("service", SERVICE_NAMES)
async def test_the_api_docs_load_nothing_from_another_host(oms: OmsClient, service: str) -> None:
    base = oms.urls[service]
    for page in ("/docs", "/redoc"):
        html = (await oms.http.get(f"{base}{page}")).text
        assert re.findall(r"(?:https?:)?//[^\s\"'<>]+", html) == [], page
        for asset in re.findall(r"(?:src|href)=['\"]([^'\"]+)['\"]", html):
            response = await oms.http.get(f"{base}{asset}")
            assert response.status_code == 200, asset
    document = (await oms.http.get(f"{base}/openapi.json")).json()
    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "`oms-token` mints one",
    }
    bounds = re.findall(r'"(gt|ge|lt|le)":', json.dumps(document))
    assert bounds == [], "non-standard JSON Schema bounds"
    assert _broken_links(document) == []
    # What a created order, return or product links to (the rest create nothing).
    links = [
        name
        for operations in document["paths"].values()
        for operation in operations.values()
        for response in operation.get("responses", {}).values()
        for name in response.get("links", {})
    ]
    assert len(links) == {"order": 15, "inventory": 4}.get(service, 0)


def _broken_links(document: dict[str, Any]) -> list[str]:
    """The OpenAPI links that point at no operation, or fill a path parameter the
    operation does not have (a renamed route or parameter leaves them behind)."""
    broken = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                for name, link in response.get("links", {}).items():
                    pointer = link["operationRef"].removeprefix("#/paths/")
                    target_path, _, target_method = pointer.rpartition("/")
                    target_path = target_path.replace("~1", "/").replace("~0", "~")
                    target = document["paths"].get(target_path, {}).get(target_method)
                    named = {p["name"] for p in (target or {}).get("parameters", [])}
                    if target is None or not set(link["parameters"]) <= named:
                        broken.append(f"{method.upper()} {path} {status} {name}")
    return broken


async def test_every_response_says_nosniff_and_authenticated_ones_are_not_stored(
    oms: OmsClient,
) -> None:
    _, payment = await captured_order(oms)
    public = await oms.http.get(f"{oms.urls['order']}/healthz")
    refused = await oms.http.get(f"{oms.urls['order']}/orders")
    personal = await oms.http.get(
        f"{oms.urls['payment']}/payments/{payment['id']}", headers=oms.admin()
    )
    for response in (public, refused, personal):
        assert response.headers["x-content-type-options"] == "nosniff"
    assert personal.headers["cache-control"] == "no-store"
    assert "cache-control" not in public.headers


async def test_cors_answers_preflights_for_the_configured_origins_only(
    oms: OmsClient, stack: Stack
) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
    }
    url = f"{oms.urls['order']}/orders"
    closed = await oms.http.options(url, headers={"Origin": "https://shop.example", **preflight})
    assert "access-control-allow-origin" not in closed.headers
    async with stack.restarted_with("order", {"OMS_CORS_ORIGINS": "https://shop.example"}):
        allowed = await oms.http.options(
            url, headers={"Origin": "https://shop.example", **preflight}
        )
        other = await oms.http.options(url, headers={"Origin": "https://evil.example", **preflight})
        simple = await oms.http.get(
            url, headers={"Origin": "https://shop.example", **oms.as_customer()}
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    assert "idempotency-key" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in other.headers
    assert simple.headers["access-control-allow-origin"] == "https://shop.example"


# -- erasure ---------------------------------------------------------------------------


async def test_deleting_an_order_erases_the_card_token_from_payment_and_its_audit_log(
    oms: OmsClient, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=5)
    order_id = (await oms.place_order([(product["sku"], 1)], token="tok_ok")).json()["id"]
    await oms.wait_for_order(order_id, "fulfilling")
    payment = await oms.payment_of(order_id)
    assert payment is not None
    calls_url = f"{oms.urls['payment']}/payments/{payment['id']}/gateway-calls"
    before = (await oms.http.get(calls_url, headers=oms.admin())).json()
    assert [c["operation"] for c in before] == ["authorize"]
    assert "token" not in before[0]["request"]  # the audit API never shows it
    assert before[0]["request"]["amount"] == 1000
    url = f"{oms.urls['order']}/orders/{order_id}"
    await oms.http.post(f"{url}/cancel", headers=oms.as_customer())
    await oms.wait_for_order(order_id, "cancelled")

    assert (await oms.http.delete(url, headers=oms.as_customer())).status_code == 204

    async def tokens_left() -> list[str]:
        rows = await db.fetch(
            "SELECT p.token FROM payment.payments p WHERE p.order_id = $1 "
            "UNION ALL SELECT c.request->>'token' FROM payment.gateway_calls c "
            "JOIN payment.payments p ON p.id = c.payment_id "
            "WHERE p.order_id = $1 AND c.request ? 'token'",
            order_id,
        )
        return [row[0] for row in rows]

    assert await eventually(tokens_left, lambda left: left == [""], 10, "tokens erased") == [""]
    after = (await oms.http.get(calls_url, headers=oms.admin())).json()
    assert [c["operation"] for c in after] == ["authorize", "void"]
    assert all("tok_ok" not in json.dumps(call) for call in after)


# -- validation: every 4xx names its field -----------------------------------------------


def error_fields(response: object) -> list[str]:
    assert hasattr(response, "status_code") and hasattr(response, "json")
    assert response.status_code == 422, response.text
    body = response.json()
    return [e["field"] for e in body.get("errors", [])] or [body["field"]]


def order_body(sku: str, **address: str) -> dict[str, object]:
    return {
        "items": [{"sku": sku, "quantity": 1}],
        "shipping_address": {**ADDRESS, **address},
        "payment": {"token": "tok_ok"},
    }


async def test_nul_characters_are_refused_naming_the_field_wherever_they_come(
    oms: OmsClient,
) -> None:
    product = await oms.create_product(on_hand=5)
    orders = f"{oms.urls['order']}/orders"
    customer = oms.as_customer()
    named = await oms.http.post(
        orders, headers=customer, json=order_body(product["sku"], name="A\x00")
    )
    token_body = {**order_body(product["sku"]), "payment": {"token": "tok_\x00ok"}}
    token = await oms.http.post(orders, headers=customer, json=token_body)
    renamed = await oms.http.patch(
        f"{oms.urls['inventory']}/products/{product['sku']}",
        headers=oms.admin(),
        json={"name": "Mug\x00"},
    )
    by_sku = await oms.http.get(f"{oms.urls['inventory']}/products/A%00B", headers=oms.admin())
    by_order = await oms.http.get(
        f"{oms.urls['shipping']}/shipments", params={"order_id": "a\x00b"}, headers=oms.admin()
    )

    assert error_fields(named) == ["shipping_address.name"]
    assert error_fields(token) == ["payment.token"]
    assert error_fields(renamed) == ["name"]
    assert error_fields(by_sku) == ["sku"]
    assert error_fields(by_order) == ["order_id"]
    assert (await oms.product(product["sku"]))["name"] == product["name"]


async def test_a_nul_in_a_carrier_event_location_is_refused_naming_the_field(
    oms: OmsClient,
) -> None:
    _, payment = await captured_order(oms)
    shipment = await oms.shipment_of(str(payment["order_id"]))
    assert shipment is not None
    response = await oms.tracking_event(
        str(shipment["id"]), "in_transit", datetime.now(UTC).isoformat(), location="Hub\x00"
    )
    assert error_fields(response) == ["location"]


@pytest.mark.parametrize("country", ["XX", "ZZ", "UK", "de"])
async def test_a_country_that_is_not_iso_3166_is_refused(oms: OmsClient, country: str) -> None:
    product = await oms.create_product(on_hand=5)
    response = await oms.http.post(
        f"{oms.urls['order']}/orders",
        headers=oms.as_customer(),
        json=order_body(product["sku"], country=country),
    )
    assert error_fields(response) == ["shipping_address.country"]


async def test_blank_names_are_refused(oms: OmsClient) -> None:
    product = await oms.create_product(on_hand=5)
    order = await oms.http.post(
        f"{oms.urls['order']}/orders",
        headers=oms.as_customer(),
        json=order_body(product["sku"], name="   ", city="\t"),
    )
    named = await oms.http.post(
        f"{oms.urls['inventory']}/products",
        headers=oms.admin(),
        json={"sku": "BLANK-1", "name": "  ", "unit_price": 100, "currency": "EUR", "on_hand": 1},
    )
    assert sorted(error_fields(order)) == ["shipping_address.city", "shipping_address.name"]
    assert error_fields(named) == ["name"]


async def test_a_product_cannot_cost_nothing(oms: OmsClient) -> None:
    # The gateway declines authorizations of 0: every order of it would fail.
    free = await oms.http.post(
        f"{oms.urls['inventory']}/products",
        headers=oms.admin(),
        json={"sku": "FREE-1", "name": "Free", "unit_price": 0, "currency": "EUR", "on_hand": 1},
    )
    product = await oms.create_product(on_hand=1)
    made_free = await oms.http.patch(
        f"{oms.urls['inventory']}/products/{product['sku']}",
        headers=oms.admin(),
        json={"unit_price": 0},
    )
    assert error_fields(free) == ["unit_price"]
    assert error_fields(made_free) == ["unit_price"]
    missing = await oms.http.get(f"{oms.urls['inventory']}/products/FREE-1", headers=oms.admin())
    assert missing.status_code == 404


# -- replays -------------------------------------------------------------------------------


async def test_a_replayed_cancel_gets_the_first_answer_and_says_it_is_a_replay(
    oms: OmsClient,
) -> None:
    product = await oms.create_product(on_hand=5)
    order_id = (await oms.place_order([(product["sku"], 1)])).json()["id"]
    await oms.wait_for_order(order_id, "fulfilling")
    url = f"{oms.urls['order']}/orders/{order_id}/cancel"
    headers = {**oms.as_customer(), "Idempotency-Key": "cancel-once"}

    first = await oms.http.post(url, headers=headers)
    await oms.wait_for_order(order_id, "cancelled")
    again = await oms.http.post(url, headers=headers)

    assert first.status_code == again.status_code == 202
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert first.json()["status"] == "cancelling"
    assert again.json() == first.json()


async def test_a_replayed_refund_says_it_is_a_replay(oms: OmsClient) -> None:
    _, payment = await captured_order(oms)
    url = f"{oms.urls['payment']}/payments/{payment['id']}/refund"
    headers = {**oms.admin(), "Idempotency-Key": "refund-once"}

    first = await oms.http.post(url, headers=headers, json={"amount": 100})
    again = await oms.http.post(url, headers=headers, json={"amount": 100})

    assert first.status_code == again.status_code == 202
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["refund"]["id"] == first.json()["refund"]["id"]


# -- development secrets -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "env", "named"),
    [
        ("order", {}, "OMS_JWT_SECRET is the public development value"),
        ("inventory", {"OMS_JWT_SECRET": "short"}, "OMS_JWT_SECRET is shorter than 32 bytes"),
        (
            "shipping",
            {"OMS_JWT_SECRET": "j" * 40},
            "OMS_CARRIER_SECRET is the public development value",
        ),
        ("console", {}, "OMS_JWT_SECRET is the public development value"),
    ],
)
def test_a_service_listening_beyond_loopback_refuses_development_or_short_secrets(
    service: str, env: dict[str, str], named: str, tmp_path: Path
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OMS_")}
    result = subprocess.run(
        [sys.executable, "-m", f"oms_{service}", "serve"],
        env={**clean, "OMS_HOST": "0.0.0.0", "OMS_LOG_FORMAT": "json", **env},
        cwd=tmp_path,  # no .env of a developer's here
        capture_output=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert named in result.stderr.decode()
