"""The carrier webhook against the running shipping service: a signature binds the
delivery to its parcel, its id and its time."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from oms_devtools.client import OmsClient, eventually

# Signature checks are per request, whatever the replica count.
pytestmark = [pytest.mark.e2e, pytest.mark.single_pass]


async def shipped_order(oms: OmsClient) -> tuple[str, dict[str, object]]:
    product = await oms.create_product(on_hand=5)
    order_id = (await oms.place_order([(product["sku"], 1)])).json()["id"]
    await oms.wait_for_order(order_id, "fulfilling")
    shipment = await oms.shipment_of(order_id)
    assert shipment is not None
    dispatched = (await oms.dispatch(str(shipment["id"]))).json()
    await oms.wait_for_order(order_id, "shipped")
    return order_id, dispatched


def delivery(tracking_number: object, occurred_at: str | None = None) -> bytes:
    return json.dumps(
        {
            "tracking_number": tracking_number,
            "status": "delivered",
            "location": "Door",
            "occurred_at": occurred_at or datetime.now(UTC).isoformat(),
        }
    ).encode()


async def test_a_signed_delivery_replayed_to_another_shipment_is_refused(oms: OmsClient) -> None:
    first_order, first = await shipped_order(oms)
    other_order, other = await shipped_order(oms)
    body = delivery(first["tracking_number"])
    headers = oms.sign(body)

    replayed = await oms.post_tracking_body(str(other["id"]), body, headers)

    assert replayed.status_code == 401
    assert replayed.json()["field"] == "tracking_number"
    assert (await oms.order(other_order))["status"] == "shipped"
    accepted = await oms.post_tracking_body(str(first["id"]), body, headers)
    assert accepted.status_code == 202
    await oms.wait_for_order(first_order, "completed")
    assert (await oms.order(other_order))["status"] == "shipped"


async def test_a_delivery_signed_more_than_five_minutes_ago_is_refused(oms: OmsClient) -> None:
    order_id, shipment = await shipped_order(oms)
    body = delivery(shipment["tracking_number"])
    stale = oms.sign(body, timestamp=datetime.now(UTC) - timedelta(minutes=6))

    refused = await oms.post_tracking_body(str(shipment["id"]), body, stale)

    assert refused.status_code == 401
    assert refused.json()["type"] == "/problems/bad-signature"
    assert (await oms.order(order_id))["status"] == "shipped"


async def test_a_webhook_id_seen_before_is_acknowledged_without_effect(oms: OmsClient) -> None:
    order_id, shipment = await shipped_order(oms)
    shipment_id, tracking_number = str(shipment["id"]), shipment["tracking_number"]
    in_transit = json.dumps(
        {
            "tracking_number": tracking_number,
            "status": "in_transit",
            "occurred_at": datetime.now(UTC).isoformat(),
        }
    ).encode()
    first = await oms.post_tracking_body(shipment_id, in_transit, oms.sign(in_transit, "msg-1"))
    assert first.status_code == 202
    # Another event under the same id (properly signed): a carrier's id is per event,
    # so this is a replay whatever it says.
    body = delivery(tracking_number)
    again = await oms.post_tracking_body(shipment_id, body, oms.sign(body, "msg-1"))

    assert again.status_code == 202
    assert again.json()["status"] == "in_transit"
    assert [e["status"] for e in again.json()["events"]] == ["in_transit"]
    fresh = await oms.post_tracking_body(shipment_id, body, oms.sign(body, "msg-2"))
    assert fresh.json()["status"] == "delivered"
    await oms.wait_for_order(order_id, "completed")


async def test_absurd_event_times_are_refused_naming_occurred_at(oms: OmsClient) -> None:
    order_id, shipment = await shipped_order(oms)
    shipment_id = str(shipment["id"])
    for occurred_at in (
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59Z",
        (datetime.now(UTC) - timedelta(days=2)).isoformat(),
    ):
        body = delivery(shipment["tracking_number"], occurred_at)
        refused = await oms.post_tracking_body(shipment_id, body)
        assert refused.status_code == 422, (occurred_at, refused.text)
        problem = refused.json()
        assert problem.get("field") == "occurred_at" or [e["field"] for e in problem["errors"]] == [
            "occurred_at"
        ], problem
    assert (await oms.order(order_id))["status"] == "shipped"


async def test_the_old_body_only_signature_is_refused_and_a_non_ascii_one_is_not_an_error(
    oms: OmsClient,
) -> None:
    order_id, shipment = await shipped_order(oms)
    body = delivery(shipment["tracking_number"])
    digest = hmac.new(oms.carrier_secret.encode(), body, hashlib.sha256).hexdigest()

    legacy = await oms.post_tracking_body(
        str(shipment["id"]), body, {"X-Signature": f"sha256={digest}"}
    )
    non_ascii = await oms.post_tracking_body(
        str(shipment["id"]), body, {"X-Signature": "sha256=été".encode()}
    )
    non_ascii_standard = await oms.post_tracking_body(
        str(shipment["id"]),
        body,
        {**oms.sign(body), "webhook-signature": "v1,été".encode()},
    )

    assert (legacy.status_code, legacy.json()["field"]) == (401, "X-Signature")
    assert (non_ascii.status_code, non_ascii.json()["field"]) == (401, "X-Signature")
    assert non_ascii_standard.status_code == 401
    order = await eventually(
        lambda: oms.order(order_id), lambda o: o["status"] == "shipped", 2, "order unchanged"
    )
    assert order["status"] == "shipped"


def readme_step_5() -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("# 5. The carrier reports delivery")
    end = readme.index("curl -s localhost:8000/orders/$ORDER_ID", start)
    return readme[start:end]


async def test_the_readme_walk_through_signs_a_delivery_the_service_accepts(
    oms: OmsClient,
) -> None:
    order_id, shipment = await shipped_order(oms)
    script = readme_step_5().replace("localhost:8003", oms.urls["shipping"])
    env = {
        **os.environ,
        "SHIPMENT_ID": str(shipment["id"]),
        "ADMIN": oms.admin_token,
        "OMS_CARRIER_SECRET": oms.carrier_secret,
    }
    ran = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr.decode()
    assert json.loads(ran.stdout)["status"] == "delivered", ran.stdout
    await oms.wait_for_order(order_id, "completed")
