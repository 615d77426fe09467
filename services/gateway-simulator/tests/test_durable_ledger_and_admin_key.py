"""A restarted simulator remembers everything its Postgres ledger holds; its
test/ops endpoints need a key when set, and it will not listen beyond this machine
without one."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from oms_gateway_simulator import GatewayConfig, create_app
from oms_gateway_simulator.__main__ import refusal
from oms_gateway_simulator.store import MemoryStore, PostgresStore

ADMIN_KEY = "an-admin-key-for-the-tests"


def client_of(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://g"
    )


async def post(
    client: httpx.AsyncClient, path: str, body: Any, key: str
) -> httpx.Response:
    return await client.post(path, json=body, headers={"Idempotency-Key": key})


@pytest.mark.integration
async def test_a_restarted_simulator_remembers_holds_captures_refunds_and_keys(
    ledger_database: str,
) -> None:
    reference = f"pay_{uuid.uuid4().hex[:8]}"
    before = PostgresStore(ledger_database)
    async with client_of(create_app(GatewayConfig(), 1, store=before)) as client:
        auth = (
            await post(
                client,
                "/v1/authorizations",
                {
                    "amount": 1000,
                    "currency": "EUR",
                    "token": "tok_ok",
                    "reference": reference,
                },
                "auth-key",
            )
        ).json()
        capture_path = f"/v1/authorizations/{auth['id']}/capture"
        await post(client, capture_path, {"amount": 400, "final": False}, "parcel-1")
        await post(
            client, f"/v1/authorizations/{auth['id']}/refunds", {"amount": 100}, "r-1"
        )
        voided = await post(
            client,
            "/v1/authorizations",
            {
                "amount": 50,
                "currency": "EUR",
                "token": "tok_ok",
                "reference": reference,
            },
            "auth-key-2",
        )
        await post(
            client, f"/v1/authorizations/{voided.json()['id']}/void", {}, "void-1"
        )
        stats_before = (await client.get("/v1/_stats")).json()
    await before.close()

    # A new process on the same database: nothing forgotten.
    after = PostgresStore(ledger_database)
    async with client_of(create_app(GatewayConfig(), 1, store=after)) as client:
        state = (await client.get(f"/v1/authorizations/{auth['id']}")).json()
        assert (
            state["status"],
            state["captured_amount"],
            state["refunded_amount"],
        ) == (
            "partially_captured",
            400,
            100,
        )
        listed = (
            await client.get("/v1/authorizations", params={"reference": reference})
        ).json()
        assert [a["status"] for a in listed["items"]] == [
            "partially_captured",
            "voided",
        ]
        # The same keys replay their first answers instead of acting again...
        replay = await post(
            client, capture_path, {"amount": 400, "final": False}, "parcel-1"
        )
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json()["captured_amount"] == 400
        # ...and the rest of the hold is still there for the next parcel.
        rest = await post(client, capture_path, {}, "parcel-2")
        assert rest.json()["captured_amount"] == 1000
        stats_after = (await client.get("/v1/_stats")).json()
        for counter in ("authorizations_attempted", "holds_placed", "voids", "refunds"):
            assert stats_after[counter] == stats_before[counter], counter
        assert stats_after["captures"] == stats_before["captures"] + 1
    await after.close()


@pytest.mark.integration
async def test_without_its_database_the_simulator_answers_503_and_keeps_no_half_state(
    ledger_database: str,
) -> None:
    unreachable = PostgresStore("postgresql://postgres@127.0.0.1:1/nowhere", timeout=2)
    async with client_of(create_app(GatewayConfig(), 1, store=unreachable)) as client:
        response = await post(
            client,
            "/v1/authorizations",
            {"amount": 1, "currency": "EUR", "token": "tok_ok", "reference": "x"},
            "k",
        )
        assert response.status_code == 503
        assert response.json() == {"error": "unavailable"}
        assert (await client.get("/v1/authorizations/auth_x")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200


@pytest.fixture
async def guarded() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(GatewayConfig(), 1, store=MemoryStore(), admin_key=ADMIN_KEY)
    async with client_of(app) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/_config"),
        ("POST", "/v1/_config"),
        ("POST", "/v1/_reset"),
        ("GET", "/v1/_stats"),
    ],
)
@pytest.mark.parametrize("given", [None, "wrong", "été"])
async def test_with_an_admin_key_the_ops_endpoints_refuse_requests_without_it(
    guarded: httpx.AsyncClient, method: str, path: str, given: str | None
) -> None:
    headers = {} if given is None else {"X-Admin-Key": given.encode()}
    response = await guarded.request(
        method,
        path,
        json={"failure_rate": 1.0} if path == "/v1/_config" else None,
        headers=headers,
    )
    assert response.status_code == 401
    assert response.json() == {"error": "admin_key_required"}
    # Nothing changed: no fault was switched on.
    config = await guarded.get("/v1/_config", headers={"X-Admin-Key": ADMIN_KEY})
    assert config.json()["failure_rate"] == 0.0


async def test_with_the_admin_key_the_ops_endpoints_work_and_the_payment_api_needs_none(
    guarded: httpx.AsyncClient,
) -> None:
    admin = {"X-Admin-Key": ADMIN_KEY}
    changed = await guarded.post("/v1/_config", json={"latency_ms": 1}, headers=admin)
    assert changed.status_code == 200
    assert (await guarded.post("/v1/_reset", headers=admin)).status_code == 200
    assert (await guarded.get("/v1/_stats", headers=admin)).status_code == 200
    placed = await post(
        guarded,
        "/v1/authorizations",
        {"amount": 1, "currency": "EUR", "token": "tok_ok", "reference": "x"},
        "k",
    )
    assert placed.status_code == 201
    assert (await guarded.get("/healthz")).status_code == 200


@pytest.mark.parametrize(
    ("host", "key", "refused"),
    [
        ("127.0.0.1", None, False),
        ("localhost", None, False),
        ("::1", None, False),
        ("0.0.0.0", None, True),
        ("::", None, True),
        ("gateway.internal", None, True),
        ("0.0.0.0", "short", True),
        ("0.0.0.0", ADMIN_KEY, False),
    ],
)
def test_beyond_loopback_the_simulator_needs_an_admin_key_to_start(
    host: str, key: str | None, refused: bool
) -> None:
    assert (refusal(host, key) is not None) is refused


def test_the_simulator_refuses_to_start_on_all_interfaces_without_a_key() -> None:
    started = subprocess.run(
        [
            sys.executable,
            "-m",
            "oms_gateway_simulator",
            "--host",
            "0.0.0.0",
            "--port",
            "1",
        ],
        env={"OMS_GATEWAY_ADMIN_KEY": "", "PATH": ""},
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert "OMS_GATEWAY_ADMIN_KEY" in started.stderr
