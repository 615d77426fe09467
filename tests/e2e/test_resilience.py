"""Stopping politely, rolling restarts, and the broker or the database going away."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from oms_devtools.client import ADDRESS, OmsClient, eventually
from oms_devtools.stack import SERVICES, Stack

pytestmark = pytest.mark.e2e


def order_body(sku: str, token: str = "tok_ok") -> dict[str, Any]:
    return {
        "items": [{"sku": sku, "quantity": 1}],
        "shipping_address": ADDRESS,
        "payment": {"token": token},
    }


async def place_until_accepted(oms: OmsClient, body: dict[str, Any], customer: str) -> str:
    """A client that retries with its idempotency key through outages."""
    key = str(uuid.uuid4())
    deadline = time.monotonic() + 60
    while True:
        try:
            response = await oms.http.post(
                f"{oms.urls['order']}/orders",
                json=body,
                timeout=5,
                headers={**oms.as_customer(customer), "Idempotency-Key": key},
            )
            if response.status_code == 202:
                return str(response.json()["id"])
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the order was never accepted"
        await asyncio.sleep(0.2)


async def statuses(db: asyncpg.Connection, ids: list[str]) -> dict[str, str]:
    rows = await db.fetch(
        "SELECT id::text, status FROM orders.orders WHERE id = ANY($1::uuid[])", ids
    )
    return {row["id"]: row["status"] for row in rows}


SETTLED = {"fulfilling", "rejected", "cancelled"}


async def test_sigterm_finishes_the_work_in_hand_flushes_the_outbox_and_exits_cleanly(
    oms: OmsClient, stack: Stack, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=100)
    ids = await asyncio.gather(
        *(place_until_accepted(oms, order_body(product["sku"]), "polite") for _ in range(20))
    )
    await asyncio.sleep(0.2)  # some reservations are being handled right now
    codes = [stack.stop(name) for name in stack.replica_names("inventory")]
    # uvicorn re-raises the SIGTERM it handled, so the exit status shows it.
    assert set(codes) <= {0, -signal.SIGTERM}
    logs = "".join(stack.logs(name) for name in stack.replica_names("inventory"))
    assert logs.count("stopped cleanly") >= len(codes)
    assert await db.fetchval("SELECT count(*) FROM inventory.outbox") == 0
    await stack.start_service("inventory")
    final = await eventually(
        lambda: statuses(db, ids),
        lambda s: set(s.values()) <= SETTLED and len(s) == 20,
        30,
        "every order to be reserved",
    )
    assert set(final.values()) == {"fulfilling"}
    assert (await oms.product(product["sku"]))["reserved"] == 20


async def test_a_rolling_restart_under_load_loses_nothing(
    oms: OmsClient, stack: Stack, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=1_000)
    placed: list[str] = []
    done = asyncio.Event()

    async def load() -> None:
        tasks = []
        while not done.is_set():
            tasks.append(
                asyncio.create_task(
                    place_until_accepted(oms, order_body(product["sku"]), "rolling")
                )
            )
            await asyncio.sleep(0.2)
        placed.extend(await asyncio.gather(*tasks))

    loading = asyncio.create_task(load())
    await asyncio.sleep(1)
    for service in SERVICES:  # one after the other, as a deployment would
        await stack.restart(service)
        await asyncio.sleep(0.5)
    done.set()
    await loading
    final = await eventually(
        lambda: statuses(db, placed),
        lambda s: len(s) == len(placed) and set(s.values()) <= SETTLED,
        60,
        "every order to be reserved",
    )
    assert set(final.values()) == {"fulfilling"}
    assert await db.fetchval(
        "SELECT count(*) FROM orders.orders WHERE customer_id = 'rolling'"
    ) == len(placed)
    assert (await oms.product(product["sku"]))["reserved"] == len(placed)


def _rabbitmqctl(action: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", action], check=True, capture_output=True, timeout=120)


async def readiness(oms: OmsClient, service: str) -> tuple[int, dict[str, bool]]:
    response = await oms.http.get(f"{oms.urls[service]}/readyz")
    return response.status_code, response.json().get("checks", {})


async def test_without_the_broker_the_api_answers_and_the_work_resumes_when_it_returns(
    oms: OmsClient, stack: Stack
) -> None:
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is needed to stop the broker")
    product = await oms.create_product(on_hand=5)
    # The outage outlasts the suite's short reservation deadline; this order should
    # wait for the broker, not be compensated.
    async with stack.restarted_with("order", {"OMS_DEADLINE_RESERVATION_SECONDS": "300"}):
        order_id = await _order_through_a_broker_outage(oms, stack, product["sku"])
        await oms.wait_for_order(order_id, "fulfilling", timeout=60)


async def _order_through_a_broker_outage(oms: OmsClient, stack: Stack, sku: str) -> str:
    await asyncio.to_thread(_rabbitmqctl, "stop_app")
    try:
        for service in SERVICES:
            _, checks = await eventually(
                lambda service=service: readiness(oms, service),
                lambda answer: answer[0] == 503,
                20,
                f"{service} to say it is not ready",
            )
            assert checks == {"database": True, "broker": False}
        assert (await oms.http.get(f"{oms.urls['order']}/healthz")).status_code == 200
        # Orders are still taken: they wait in the outbox.
        accepted = await oms.place_order([(sku, 1)])
        assert accepted.status_code == 202
        order_id = str(accepted.json()["id"])
        assert (await oms.order(order_id))["status"] == "pending"
    finally:
        await asyncio.to_thread(_rabbitmqctl, "start_app")
    await stack.wait_ready(timeout=60)
    return order_id


def _postgres(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    if action == "stop":
        command += ["-m", "fast"]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


async def test_without_the_database_the_api_answers_503_and_recovers_on_its_own(
    oms: OmsClient, stack: Stack
) -> None:
    if shutil.which("pg_ctlcluster") is None or not await asyncio.to_thread(
        os.path.isdir, "/etc/postgresql"
    ):
        pytest.skip("needs a local Postgres cluster this test may stop")
    product = await oms.create_product(on_hand=5)
    await asyncio.to_thread(_postgres, "stop")
    try:
        status, checks = await readiness(oms, "order")
        assert (status, checks) == (503, {"database": False, "broker": True})
        assert (await oms.http.get(f"{oms.urls['order']}/healthz")).status_code == 200
        refused = await oms.place_order([(product["sku"], 1)])
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"]
        lookup = await oms.http.get(
            f"{oms.urls['inventory']}/products/{product['sku']}", headers=oms.admin()
        )
        assert lookup.status_code == 503
    finally:
        await asyncio.to_thread(_postgres, "start")
    await stack.wait_ready(timeout=60)
    accepted = await eventually(
        lambda: oms.place_order([(product["sku"], 1)]),
        lambda r: r.status_code == 202,
        30,
        "an accepted order",
    )
    await oms.wait_for_order(accepted.json()["id"], "fulfilling", timeout=60)
