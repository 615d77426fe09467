"""Behaviour of the gateway simulator over its HTTP API (in-process ASGI)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from oms_gateway_simulator import GatewayConfig, create_app
from oms_gateway_simulator.store import LedgerStore

FAST_TIMEOUT = 0.05


@pytest.fixture
async def client(store: LedgerStore) -> AsyncIterator[httpx.AsyncClient]:
    # Explicit config so the developer's OMS_GATEWAY_* variables cannot leak in.
    app = create_app(config=GatewayConfig(), seed=1234, store=store, admin_key="")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
        response = await c.post(
            "/v1/_config", json={"timeout_delay_seconds": FAST_TIMEOUT}
        )
        assert response.status_code == 200
        yield c


def new_key() -> str:
    return str(uuid.uuid4())


async def post(
    client: httpx.AsyncClient, path: str, body: Any = None, key: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": key or new_key()}
    if body is None:
        return await client.post(path, headers=headers)
    return await client.post(path, json=body, headers=headers)


def auth_body(
    token: str = "tok_ok", amount: int = 1000, reference: str = "pay_1"
) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR", "token": token, "reference": reference}


async def authorize(
    client: httpx.AsyncClient, token: str = "tok_ok", **kw: Any
) -> dict[str, Any]:
    response = await post(client, "/v1/authorizations", auth_body(token, **kw))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def stats(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/v1/_stats")).json()
    return body


# --- health -----------------------------------------------------------------


async def test_healthz_reports_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# --- authorization tokens ---------------------------------------------------


async def test_ok_token_places_a_hold_and_answers_201(
    client: httpx.AsyncClient,
) -> None:
    response = await post(client, "/v1/authorizations", auth_body(reference="pay_ok"))

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("auth_")
    assert body == {
        "id": body["id"],
        "status": "authorized",
        "amount": 1000,
        "currency": "EUR",
        "reference": "pay_ok",
        "captured_amount": 0,
        "refunded_amount": 0,
    }
    s = await stats(client)
    assert s["holds_placed"] == 1
    assert s["holds_by_reference"] == {"pay_ok": 1}


@pytest.mark.parametrize(
    ("token", "decline_code"),
    [
        ("tok_declined", "card_declined"),
        ("tok_insufficient_funds", "insufficient_funds"),
    ],
)
async def test_declining_tokens_answer_402_with_their_code_and_place_no_hold(
    client: httpx.AsyncClient, token: str, decline_code: str
) -> None:
    response = await post(client, "/v1/authorizations", auth_body(token))

    assert response.status_code == 402
    body = response.json()
    assert body["id"].startswith("auth_")
    assert body["status"] == "declined"
    assert body["decline_code"] == decline_code
    assert body["amount"] == 1000 and body["reference"] == "pay_1"
    s = await stats(client)
    assert s["holds_placed"] == 0
    assert s["authorizations_attempted"] == 1


async def test_timeout_token_answers_504_after_the_delay_and_places_no_hold(
    client: httpx.AsyncClient,
) -> None:
    started = time.monotonic()
    response = await post(client, "/v1/authorizations", auth_body("tok_timeout"))

    assert time.monotonic() - started >= FAST_TIMEOUT
    assert response.status_code == 504
    assert response.json() == {"error": "timeout"}
    assert (await stats(client))["holds_placed"] == 0
    listed = await client.get("/v1/authorizations", params={"reference": "pay_1"})
    assert listed.json() == {"items": []}


async def test_retried_timeout_with_same_key_times_out_again(
    client: httpx.AsyncClient,
) -> None:
    key = new_key()
    first = await post(client, "/v1/authorizations", auth_body("tok_timeout"), key)
    second = await post(client, "/v1/authorizations", auth_body("tok_timeout"), key)

    assert first.status_code == second.status_code == 504
    s = await stats(client)
    assert s["authorizations_attempted"] == 2
    assert s["holds_placed"] == 0


async def test_error_token_answers_500_and_places_no_hold(
    client: httpx.AsyncClient,
) -> None:
    response = await post(client, "/v1/authorizations", auth_body("tok_error"))

    assert response.status_code == 500
    assert response.json() == {"error": "gateway_error"}
    assert (await stats(client))["holds_placed"] == 0


async def test_unknown_token_is_rejected_as_invalid(client: httpx.AsyncClient) -> None:
    response = await post(client, "/v1/authorizations", auth_body("tok_nonsense"))

    assert response.status_code == 422
    assert response.json() == {"error": "invalid_token"}
    assert (await stats(client))["holds_placed"] == 0


async def test_flaky_first_request_times_out_but_places_the_hold(
    client: httpx.AsyncClient,
) -> None:
    response = await post(
        client, "/v1/authorizations", auth_body("tok_flaky", reference="pay_f")
    )

    assert response.status_code == 504
    assert response.json() == {"error": "timeout"}
    assert (await stats(client))["holds_by_reference"] == {"pay_f": 1}
    # The client that lost the answer can find its hold by reference.
    listed = (
        await client.get("/v1/authorizations", params={"reference": "pay_f"})
    ).json()
    assert [item["status"] for item in listed["items"]] == ["authorized"]


async def test_retried_flaky_authorization_with_same_key_places_one_hold(
    client: httpx.AsyncClient,
) -> None:
    key = new_key()
    body = auth_body("tok_flaky", reference="pay_f")
    first = await post(client, "/v1/authorizations", body, key)
    second = await post(client, "/v1/authorizations", body, key)
    third = await post(client, "/v1/authorizations", body, key)

    assert first.status_code == 504
    assert second.status_code == third.status_code == 201
    assert second.json() == third.json()
    assert second.json()["status"] == "authorized"
    assert second.headers["Idempotent-Replayed"] == "true"
    s = await stats(client)
    assert s["holds_placed"] == 1
    assert s["holds_by_reference"] == {"pay_f": 1}
    assert s["authorizations_attempted"] == 1


async def test_flaky_retry_with_a_new_key_places_a_second_hold(
    client: httpx.AsyncClient,
) -> None:
    body = auth_body("tok_flaky", reference="pay_f")
    await post(client, "/v1/authorizations", body)
    await post(client, "/v1/authorizations", body)

    assert (await stats(client))["holds_by_reference"] == {"pay_f": 2}


@pytest.mark.parametrize(
    "token", ["tok_void_refused", "tok_capture_refused", "tok_refund_refused"]
)
async def test_refusing_tokens_authorize_like_ok(
    client: httpx.AsyncClient, token: str
) -> None:
    auth = await authorize(client, token)
    assert auth["status"] == "authorized"
    assert (await stats(client))["holds_placed"] == 1


# --- idempotency ------------------------------------------------------------


async def test_retried_authorization_with_same_key_places_one_hold(
    client: httpx.AsyncClient,
) -> None:
    key = new_key()
    first = await post(client, "/v1/authorizations", auth_body(), key)
    second = await post(client, "/v1/authorizations", auth_body(), key)

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    s = await stats(client)
    assert s["holds_placed"] == 1
    assert s["authorizations_attempted"] == 1


async def test_replay_ignores_json_formatting_of_the_same_body(
    client: httpx.AsyncClient,
) -> None:
    key = new_key()
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
    first = await client.post(
        "/v1/authorizations",
        content=b'{"amount":1000,"currency":"EUR","token":"tok_ok","reference":"pay_1"}',
        headers=headers,
    )
    second = await client.post(
        "/v1/authorizations",
        content=b'{ "reference": "pay_1", "token": "tok_ok", "currency": "EUR", "amount": 1000 }',
        headers=headers,
    )

    assert first.json() == second.json()
    assert (await stats(client))["holds_placed"] == 1


async def test_replay_returns_the_stored_response_not_the_current_state(
    client: httpx.AsyncClient,
) -> None:
    key = new_key()
    auth = (await post(client, "/v1/authorizations", auth_body(), key)).json()
    await post(client, f"/v1/authorizations/{auth['id']}/void")

    replay = await post(client, "/v1/authorizations", auth_body(), key)
    assert replay.json() == auth


async def test_declined_authorization_is_replayed_with_the_same_id(
    client: httpx.AsyncClient,
) -> None:
    key = new_key()
    first = await post(client, "/v1/authorizations", auth_body("tok_declined"), key)
    second = await post(client, "/v1/authorizations", auth_body("tok_declined"), key)

    assert first.status_code == second.status_code == 402
    assert first.json() == second.json()
    assert (await stats(client))["authorizations_attempted"] == 1


async def test_reusing_a_key_with_a_different_body_answers_409(
    client: httpx.AsyncClient,
) -> None:
    key = new_key()
    await post(client, "/v1/authorizations", auth_body(amount=1000), key)
    reused = await post(client, "/v1/authorizations", auth_body(amount=2000), key)

    assert reused.status_code == 409
    assert reused.json() == {"error": "idempotency_key_reused"}
    assert (await stats(client))["holds_placed"] == 1


async def test_same_key_on_a_different_endpoint_is_independent(
    client: httpx.AsyncClient,
) -> None:
    key = new_key()
    auth = (await post(client, "/v1/authorizations", auth_body(), key)).json()
    capture = await post(
        client, f"/v1/authorizations/{auth['id']}/capture", {"amount": 500}, key
    )

    assert capture.status_code == 200
    assert capture.json()["status"] == "captured"


async def test_concurrent_requests_with_same_key_execute_once(
    client: httpx.AsyncClient,
) -> None:
    key = new_key()
    responses = await asyncio.gather(
        *(post(client, "/v1/authorizations", auth_body(), key) for _ in range(5))
    )

    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert (await stats(client))["holds_placed"] == 1


async def test_concurrent_flaky_retries_with_same_key_place_one_hold(
    client: httpx.AsyncClient,
) -> None:
    key = new_key()
    body = auth_body("tok_flaky", reference="pay_c")
    responses = await asyncio.gather(
        *(post(client, "/v1/authorizations", body, key) for _ in range(3))
    )

    assert sorted(r.status_code for r in responses) == [201, 201, 504]
    assert (await stats(client))["holds_by_reference"] == {"pay_c": 1}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/authorizations", auth_body()),
        ("/v1/authorizations/auth_x/capture", {"amount": 1}),
        ("/v1/authorizations/auth_x/void", {}),
        ("/v1/authorizations/auth_x/refunds", {"amount": 1}),
    ],
)
async def test_mutating_request_without_idempotency_key_answers_400(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    response = await client.post(path, json=body)

    assert response.status_code == 400
    assert response.json() == {"error": "idempotency_key_required"}
    assert (await stats(client))["authorizations_attempted"] == 0


# --- request validation -----------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {**auth_body(), "amount": 0},
        {**auth_body(), "amount": -5},
        {**auth_body(), "amount": "1000"},
        {**auth_body(), "amount": 10.5},
        {**auth_body(), "amount": True},
        {**auth_body(), "currency": "eur"},
        {**auth_body(), "currency": "EURO"},
        {**auth_body(), "token": ""},
        {**auth_body(), "extra": 1},
        {"amount": 1000, "currency": "EUR", "token": "tok_ok"},
        [],
    ],
)
async def test_invalid_authorization_bodies_answer_422(
    client: httpx.AsyncClient, body: Any
) -> None:
    response = await post(client, "/v1/authorizations", body)

    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert response.json()["detail"]
    s = await stats(client)
    assert s["authorizations_attempted"] == 0 and s["holds_placed"] == 0


async def test_non_json_body_answers_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/authorizations",
        content=b"amount=5",
        headers={"Idempotency-Key": new_key()},
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


async def test_invalid_request_is_not_remembered_for_its_key(
    client: httpx.AsyncClient,
) -> None:
    key = new_key()
    bad = await post(
        client, "/v1/authorizations", {**auth_body(), "currency": "eur"}, key
    )
    fixed = await post(client, "/v1/authorizations", auth_body(), key)

    assert bad.status_code == 422
    assert fixed.status_code == 201


# --- reading authorizations -------------------------------------------------


async def test_get_authorization_returns_its_current_state(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    await post(client, f"/v1/authorizations/{auth['id']}/capture", {"amount": 400})

    response = await client.get(f"/v1/authorizations/{auth['id']}")
    assert response.status_code == 200
    assert response.json() == {**auth, "status": "captured", "captured_amount": 400}


async def test_get_unknown_authorization_answers_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/authorizations/auth_missing")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found"}


async def test_listing_by_reference_returns_every_attempt_oldest_first(
    client: httpx.AsyncClient,
) -> None:
    declined = (
        await post(client, "/v1/authorizations", auth_body("tok_declined"))
    ).json()
    held = await authorize(client)
    await authorize(client, reference="pay_other")

    response = await client.get("/v1/authorizations", params={"reference": "pay_1"})
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["items"]] == [
        declined["id"],
        held["id"],
    ]


async def test_listing_without_reference_is_an_invalid_request(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/authorizations")
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


# --- capture ----------------------------------------------------------------


async def test_full_capture_marks_the_authorization_captured(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    response = await post(
        client, f"/v1/authorizations/{auth['id']}/capture", {"amount": 1000}
    )

    assert response.status_code == 200
    assert response.json() == {**auth, "status": "captured", "captured_amount": 1000}
    assert (await stats(client))["captures"] == 1


async def test_partial_capture_captures_less_than_authorized(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    response = await post(
        client, f"/v1/authorizations/{auth['id']}/capture", {"amount": 250}
    )

    assert response.status_code == 200
    assert response.json()["captured_amount"] == 250
    assert response.json()["amount"] == 1000


async def test_capture_above_the_authorized_amount_answers_422(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    response = await post(
        client, f"/v1/authorizations/{auth['id']}/capture", {"amount": 1001}
    )

    assert response.status_code == 422
    assert response.json() == {"error": "capture_exceeds_authorized"}
    assert (await client.get(f"/v1/authorizations/{auth['id']}")).json()[
        "status"
    ] == "authorized"


@pytest.mark.parametrize("amount", [0, -1, "10"])
async def test_capture_with_an_invalid_amount_answers_422(
    client: httpx.AsyncClient, amount: Any
) -> None:
    auth = await authorize(client)
    response = await post(
        client, f"/v1/authorizations/{auth['id']}/capture", {"amount": amount}
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


async def test_capturing_a_voided_authorization_answers_409(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    await post(client, f"/v1/authorizations/{auth['id']}/void")
    response = await post(
        client, f"/v1/authorizations/{auth['id']}/capture", {"amount": 100}
    )

    assert response.status_code == 409
    assert response.json() == {"error": "invalid_state", "status": "voided"}


async def test_capturing_a_declined_authorization_answers_409(
    client: httpx.AsyncClient,
) -> None:
    declined = (
        await post(client, "/v1/authorizations", auth_body("tok_declined"))
    ).json()
    response = await post(
        client, f"/v1/authorizations/{declined['id']}/capture", {"amount": 100}
    )

    assert response.status_code == 409
    assert response.json() == {"error": "invalid_state", "status": "declined"}


async def test_capturing_twice_with_different_keys_answers_409(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    await post(client, f"/v1/authorizations/{auth['id']}/capture", {"amount": 100})
    response = await post(
        client, f"/v1/authorizations/{auth['id']}/capture", {"amount": 100}
    )

    assert response.status_code == 409
    assert response.json() == {"error": "invalid_state", "status": "captured"}
    assert (await stats(client))["captures"] == 1


async def test_retried_capture_with_same_key_captures_once(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    key = new_key()
    first = await post(
        client, f"/v1/authorizations/{auth['id']}/capture", {"amount": 100}, key
    )
    second = await post(
        client, f"/v1/authorizations/{auth['id']}/capture", {"amount": 100}, key
    )

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert (await stats(client))["captures"] == 1


async def test_capture_refused_token_answers_502_and_stays_authorized(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client, "tok_capture_refused")
    response = await post(
        client, f"/v1/authorizations/{auth['id']}/capture", {"amount": 100}
    )

    assert response.status_code == 502
    assert response.json() == {"error": "capture_refused"}
    assert (await client.get(f"/v1/authorizations/{auth['id']}")).json()[
        "status"
    ] == "authorized"
    assert (await stats(client))["captures"] == 0


async def test_capturing_an_unknown_authorization_answers_404(
    client: httpx.AsyncClient,
) -> None:
    response = await post(
        client, "/v1/authorizations/auth_missing/capture", {"amount": 100}
    )
    assert response.status_code == 404
    assert response.json() == {"error": "not_found"}


# --- several partial captures on one hold -------------------------------------


async def capture(
    client: httpx.AsyncClient, auth_id: str, body: Any, key: str | None = None
) -> httpx.Response:
    return await post(client, f"/v1/authorizations/{auth_id}/capture", body, key)


async def test_non_final_captures_add_up_and_the_last_one_closes_the_hold(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)  # 1000
    first = await capture(client, auth["id"], {"amount": 300, "final": False})
    assert first.status_code == 200
    assert first.json() == {
        **auth,
        "status": "partially_captured",
        "captured_amount": 300,
    }
    second = await capture(client, auth["id"], {"amount": 200, "final": False})
    assert second.json()["captured_amount"] == 500
    # The rest, without naming it: everything still held.
    last = await capture(client, auth["id"], {})
    assert last.json() == {**auth, "status": "captured", "captured_amount": 1000}
    assert (await stats(client))["captures"] == 3


async def test_a_final_partial_capture_releases_the_rest_of_the_hold(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    await capture(client, auth["id"], {"amount": 300, "final": False})
    final = await capture(client, auth["id"], {"amount": 200})
    assert final.json() == {**auth, "status": "captured", "captured_amount": 500}
    after = await capture(client, auth["id"], {"amount": 100})
    assert after.status_code == 409
    assert after.json() == {"error": "invalid_state", "status": "captured"}


async def test_captures_together_may_never_exceed_the_hold(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    await capture(client, auth["id"], {"amount": 600, "final": False})
    over = await capture(client, auth["id"], {"amount": 401, "final": False})
    assert over.status_code == 422
    assert over.json() == {"error": "capture_exceeds_authorized"}
    state = (await client.get(f"/v1/authorizations/{auth['id']}")).json()
    assert (state["status"], state["captured_amount"]) == ("partially_captured", 600)
    assert (await stats(client))["captures"] == 1


async def test_a_void_after_partial_captures_releases_the_rest_and_keeps_the_captures(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    await capture(client, auth["id"], {"amount": 250, "final": False})
    voided = await post(client, f"/v1/authorizations/{auth['id']}/void")
    assert voided.status_code == 200
    assert voided.json() == {**auth, "status": "captured", "captured_amount": 250}
    refused = await capture(client, auth["id"], {"amount": 1, "final": False})
    assert refused.status_code == 409
    refund = await post(
        client, f"/v1/authorizations/{auth['id']}/refunds", {"amount": 250}
    )
    assert refund.status_code == 201
    assert (await stats(client))["voids"] == 1


async def test_each_partial_capture_is_idempotent_under_its_own_key(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    parcel_one, parcel_two = new_key(), new_key()
    body = {"amount": 400, "final": False}
    for _ in range(2):
        first = await capture(client, auth["id"], body, parcel_one)
    assert first.headers["Idempotent-Replayed"] == "true"
    second = await capture(client, auth["id"], body, parcel_two)
    assert "Idempotent-Replayed" not in second.headers
    assert second.json()["captured_amount"] == 800
    assert (await stats(client))["captures"] == 2


async def test_money_captured_from_a_partly_captured_hold_can_be_refunded(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    await capture(client, auth["id"], {"amount": 300, "final": False})
    path = f"/v1/authorizations/{auth['id']}/refunds"
    assert (await post(client, path, {"amount": 301})).status_code == 422
    assert (await post(client, path, {"amount": 300})).status_code == 201
    state = (await client.get(f"/v1/authorizations/{auth['id']}")).json()
    # The rest is still held, for the next parcel.
    assert (state["status"], state["refunded_amount"]) == ("partially_captured", 300)


@pytest.mark.parametrize(
    "body", [{"final": "no"}, {"amount": 0}, {"amount": 10, "extra": 1}]
)
async def test_a_capture_with_a_bad_body_answers_422(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    auth = await authorize(client)
    response = await capture(client, auth["id"], body)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


# --- void -------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, {}])
async def test_void_releases_the_hold(client: httpx.AsyncClient, body: Any) -> None:
    auth = await authorize(client)
    response = await post(client, f"/v1/authorizations/{auth['id']}/void", body)

    assert response.status_code == 200
    assert response.json() == {**auth, "status": "voided"}
    assert (await stats(client))["voids"] == 1


async def test_voiding_again_with_a_different_key_returns_the_voided_state(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    first = await post(client, f"/v1/authorizations/{auth['id']}/void")
    second = await post(client, f"/v1/authorizations/{auth['id']}/void")

    assert first.status_code == second.status_code == 200
    assert second.json()["status"] == "voided"
    assert (await stats(client))["voids"] == 1


async def test_empty_and_empty_object_void_bodies_are_the_same_request(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    key = new_key()
    first = await post(client, f"/v1/authorizations/{auth['id']}/void", None, key)
    second = await post(client, f"/v1/authorizations/{auth['id']}/void", {}, key)

    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json() == second.json()


async def test_void_with_unexpected_fields_answers_422(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    response = await post(
        client, f"/v1/authorizations/{auth['id']}/void", {"amount": 5}
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


async def test_voiding_a_captured_authorization_answers_409(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    await post(client, f"/v1/authorizations/{auth['id']}/capture", {"amount": 1000})
    response = await post(client, f"/v1/authorizations/{auth['id']}/void")

    assert response.status_code == 409
    assert response.json() == {"error": "invalid_state", "status": "captured"}


async def test_voiding_a_declined_authorization_answers_409(
    client: httpx.AsyncClient,
) -> None:
    declined = (
        await post(client, "/v1/authorizations", auth_body("tok_declined"))
    ).json()
    response = await post(client, f"/v1/authorizations/{declined['id']}/void")
    assert response.status_code == 409
    assert response.json() == {"error": "invalid_state", "status": "declined"}


async def test_void_refused_token_keeps_refusing_every_void(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client, "tok_void_refused")
    for _ in range(3):
        response = await post(client, f"/v1/authorizations/{auth['id']}/void")
        assert response.status_code == 502
        assert response.json() == {"error": "void_refused"}

    assert (await client.get(f"/v1/authorizations/{auth['id']}")).json()[
        "status"
    ] == "authorized"
    assert (await stats(client))["voids"] == 0


async def test_voiding_an_unknown_authorization_answers_404(
    client: httpx.AsyncClient,
) -> None:
    response = await post(client, "/v1/authorizations/auth_missing/void")
    assert response.status_code == 404


# --- refunds ----------------------------------------------------------------


async def captured(client: httpx.AsyncClient, amount: int = 1000) -> dict[str, Any]:
    auth = await authorize(client)
    response = await post(
        client, f"/v1/authorizations/{auth['id']}/capture", {"amount": amount}
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_partial_then_full_refund_moves_through_refund_states(
    client: httpx.AsyncClient,
) -> None:
    auth = await captured(client, 800)
    path = f"/v1/authorizations/{auth['id']}"

    first = await post(client, f"{path}/refunds", {"amount": 300})
    assert first.status_code == 201
    assert first.json()["id"].startswith("ref_")
    assert first.json() == {
        "id": first.json()["id"],
        "authorization_id": auth["id"],
        "amount": 300,
        "status": "refunded",
    }
    state = (await client.get(path)).json()
    assert (state["status"], state["refunded_amount"]) == ("partially_refunded", 300)

    second = await post(client, f"{path}/refunds", {"amount": 500})
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]
    state = (await client.get(path)).json()
    assert (state["status"], state["refunded_amount"]) == ("refunded", 800)
    assert (await stats(client))["refunds"] == 2


async def test_refunds_may_never_exceed_the_captured_amount(
    client: httpx.AsyncClient,
) -> None:
    auth = await captured(client, 500)  # partial capture of a 1000 hold
    path = f"/v1/authorizations/{auth['id']}/refunds"

    assert (await post(client, path, {"amount": 501})).json() == {
        "error": "refund_exceeds_captured"
    }
    assert (await post(client, path, {"amount": 400})).status_code == 201
    over = await post(client, path, {"amount": 101})
    assert over.status_code == 422
    assert over.json() == {"error": "refund_exceeds_captured"}
    assert (await post(client, path, {"amount": 100})).status_code == 201
    assert (await post(client, path, {"amount": 1})).status_code == 422
    assert (await stats(client))["refunds"] == 2


async def test_retried_refund_with_same_key_refunds_once(
    client: httpx.AsyncClient,
) -> None:
    auth = await captured(client)
    path = f"/v1/authorizations/{auth['id']}/refunds"
    key = new_key()
    first = await post(client, path, {"amount": 100}, key)
    second = await post(client, path, {"amount": 100}, key)

    assert first.json() == second.json()
    assert (await client.get(f"/v1/authorizations/{auth['id']}")).json()[
        "refunded_amount"
    ] == 100
    assert (await stats(client))["refunds"] == 1


async def test_refund_refused_token_answers_402_for_every_refund_and_refunds_nothing(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client, "tok_refund_refused")
    path = f"/v1/authorizations/{auth['id']}"
    assert (await post(client, f"{path}/capture", {"amount": 600})).status_code == 200

    first = await post(client, f"{path}/refunds", {"amount": 100})
    second = await post(client, f"{path}/refunds", {"amount": 600})

    assert (first.status_code, first.json()) == (402, {"error": "refund_refused"})
    assert (second.status_code, second.json()) == (402, {"error": "refund_refused"})
    state = (await client.get(path)).json()
    assert (state["status"], state["captured_amount"], state["refunded_amount"]) == (
        "captured",
        600,
        0,
    )
    assert (await stats(client))["refunds"] == 0


async def test_refund_refused_token_still_answers_bad_refunds_as_such(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client, "tok_refund_refused")
    path = f"/v1/authorizations/{auth['id']}"
    uncaptured = await post(client, f"{path}/refunds", {"amount": 100})
    await post(client, f"{path}/capture", {"amount": 600})
    too_much = await post(client, f"{path}/refunds", {"amount": 601})

    assert uncaptured.status_code == 409
    assert (too_much.status_code, too_much.json()) == (
        422,
        {"error": "refund_exceeds_captured"},
    )


async def test_once_refund_refusals_are_switched_off_a_new_refund_goes_through(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client, "tok_refund_refused")
    path = f"/v1/authorizations/{auth['id']}"
    await post(client, f"{path}/capture", {"amount": 600})
    refused_key = new_key()
    assert (
        await post(client, f"{path}/refunds", {"amount": 200}, refused_key)
    ).status_code == 402

    config = await client.post(
        "/v1/_config", json={"refund_refused_token_active": False}
    )
    assert config.json()["refund_refused_token_active"] is False
    made = await post(client, f"{path}/refunds", {"amount": 200})
    # The refused request's answer stands for its key: nothing happens again.
    replayed = await post(client, f"{path}/refunds", {"amount": 200}, refused_key)

    assert made.status_code == 201
    assert made.json()["amount"] == 200
    assert (replayed.status_code, replayed.headers.get("Idempotent-Replayed")) == (
        402,
        "true",
    )
    state = (await client.get(path)).json()
    assert (state["status"], state["refunded_amount"]) == ("partially_refunded", 200)
    assert (await stats(client))["refunds"] == 1


async def test_refund_refusals_switched_back_on_refuse_again(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client, "tok_refund_refused")
    path = f"/v1/authorizations/{auth['id']}"
    await post(client, f"{path}/capture", {"amount": 600})
    await client.post("/v1/_config", json={"refund_refused_token_active": False})
    assert (await post(client, f"{path}/refunds", {"amount": 100})).status_code == 201

    await client.post("/v1/_config", json={"refund_refused_token_active": True})

    assert (await post(client, f"{path}/refunds", {"amount": 100})).status_code == 402
    assert (await client.get(path)).json()["refunded_amount"] == 100


async def test_the_refund_refusal_setting_leaves_other_tokens_refundable(
    client: httpx.AsyncClient,
) -> None:
    auth = await captured(client, 500)
    response = await post(
        client, f"/v1/authorizations/{auth['id']}/refunds", {"amount": 100}
    )
    assert response.status_code == 201
    assert (await client.get("/v1/_config")).json()["refund_refused_token_active"]


async def test_refunding_an_uncaptured_authorization_answers_409(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    response = await post(
        client, f"/v1/authorizations/{auth['id']}/refunds", {"amount": 100}
    )
    assert response.status_code == 409
    assert response.json() == {"error": "invalid_state", "status": "authorized"}


async def test_refunding_an_unknown_authorization_answers_404(
    client: httpx.AsyncClient,
) -> None:
    response = await post(
        client, "/v1/authorizations/auth_missing/refunds", {"amount": 1}
    )
    assert response.status_code == 404


# --- stats ------------------------------------------------------------------


async def test_stats_count_attempts_holds_and_requests_but_not_replays(
    client: httpx.AsyncClient,
) -> None:
    key = new_key()
    auth = (
        await post(client, "/v1/authorizations", auth_body(reference="a"), key)
    ).json()
    await post(client, "/v1/authorizations", auth_body(reference="a"), key)  # replay
    await post(client, "/v1/authorizations", auth_body("tok_declined", reference="a"))
    await post(client, "/v1/authorizations", auth_body(reference="b"))
    await post(client, f"/v1/authorizations/{auth['id']}/capture", {"amount": 1000})
    await post(client, f"/v1/authorizations/{auth['id']}/refunds", {"amount": 10})
    await client.get(f"/v1/authorizations/{auth['id']}")

    assert await stats(client) == {
        "authorizations_attempted": 3,
        "holds_placed": 2,
        "holds_by_reference": {"a": 1, "b": 1},
        "captures": 1,
        "voids": 0,
        "refunds": 1,
        "requests_by_endpoint": {
            "POST /v1/authorizations": 4,
            "POST /v1/authorizations/{authorization_id}/capture": 1,
            "POST /v1/authorizations/{authorization_id}/refunds": 1,
            "GET /v1/authorizations/{authorization_id}": 1,
        },
    }


# --- runtime config and fault injection -------------------------------------


async def test_config_can_be_read_and_updated(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/_config")).json() == {
        "latency_ms": 0,
        "failure_rate": 0.0,
        "timeout_rate": 0.0,
        "timeout_delay_seconds": FAST_TIMEOUT,
        "refund_refused_token_active": True,
    }
    response = await client.post(
        "/v1/_config", json={"latency_ms": 5, "failure_rate": 0.25}
    )
    assert response.status_code == 200
    assert response.json() == {
        "latency_ms": 5,
        "failure_rate": 0.25,
        "timeout_rate": 0.0,
        "timeout_delay_seconds": FAST_TIMEOUT,
        "refund_refused_token_active": True,
    }


@pytest.mark.parametrize(
    "body",
    [
        {"latency_ms": -1},
        {"failure_rate": 1.5},
        {"timeout_rate": -0.1},
        {"timeout_delay_seconds": 0},
        {"refund_refused_token_active": "false"},
        {"refund_refused_token_active": 0},
        {"unknown": 1},
    ],
)
async def test_invalid_config_updates_answer_422(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await client.post("/v1/_config", json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert (await client.get("/v1/_config")).json()[
        "timeout_delay_seconds"
    ] == FAST_TIMEOUT


async def test_full_failure_rate_answers_503_without_side_effects(
    client: httpx.AsyncClient,
) -> None:
    auth = await authorize(client)
    await client.post("/v1/_config", json={"failure_rate": 1.0})
    key = new_key()

    responses = [
        await post(client, "/v1/authorizations", auth_body(), key),
        await post(client, f"/v1/authorizations/{auth['id']}/capture", {"amount": 1}),
        await post(client, f"/v1/authorizations/{auth['id']}/void"),
        await post(client, f"/v1/authorizations/{auth['id']}/refunds", {"amount": 1}),
    ]
    assert {r.status_code for r in responses} == {503}
    assert {r.json()["error"] for r in responses} == {"unavailable"}
    s = await stats(client)
    assert (
        s["authorizations_attempted"],
        s["holds_placed"],
        s["captures"],
        s["voids"],
    ) == (
        1,
        1,
        0,
        0,
    )
    assert (await client.get(f"/v1/authorizations/{auth['id']}")).json()[
        "status"
    ] == "authorized"

    # Nothing was stored for the key: once healthy, the same request executes.
    await client.post("/v1/_config", json={"failure_rate": 0.0})
    retried = await post(client, "/v1/authorizations", auth_body(), key)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers


async def test_full_timeout_rate_answers_504_after_the_delay_without_side_effects(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/v1/_config", json={"timeout_rate": 1.0})
    started = time.monotonic()
    response = await post(client, "/v1/authorizations", auth_body())

    assert time.monotonic() - started >= FAST_TIMEOUT
    assert response.status_code == 504
    assert response.json() == {"error": "timeout"}
    s = await stats(client)
    assert (s["authorizations_attempted"], s["holds_placed"]) == (0, 0)


async def test_fault_injection_leaves_reads_alone(client: httpx.AsyncClient) -> None:
    await client.post("/v1/_config", json={"failure_rate": 1.0})
    response = await client.get("/v1/authorizations", params={"reference": "x"})
    assert response.status_code == 200


async def test_latency_delays_every_api_request(client: httpx.AsyncClient) -> None:
    await client.post("/v1/_config", json={"latency_ms": 60})
    started = time.monotonic()
    await client.get("/v1/authorizations/auth_missing")
    assert time.monotonic() - started >= 0.06


async def test_seeded_gateways_inject_the_same_faults(
    client: httpx.AsyncClient,
) -> None:
    async def outcomes(seed: int) -> list[int]:
        app = create_app(config=GatewayConfig(failure_rate=0.5), seed=seed)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://g") as c:
            return [
                (await post(c, "/v1/authorizations", auth_body())).status_code
                for _ in range(20)
            ]

    first, second = await outcomes(7), await outcomes(7)
    assert first == second
    assert set(first) == {201, 503}


async def test_reset_clears_state_and_config(client: httpx.AsyncClient) -> None:
    key = new_key()
    auth = (await post(client, "/v1/authorizations", auth_body(), key)).json()
    await client.post(
        "/v1/_config", json={"latency_ms": 5, "refund_refused_token_active": False}
    )

    response = await client.post("/v1/_reset")
    assert response.status_code == 200
    assert response.json() == GatewayConfig().as_dict()
    assert (await client.get(f"/v1/authorizations/{auth['id']}")).status_code == 404
    s = await stats(client)
    assert (s["holds_placed"], s["holds_by_reference"]) == (0, {})
    assert s["requests_by_endpoint"] == {"GET /v1/authorizations/{authorization_id}": 1}
    # The idempotency key is forgotten too.
    again = await post(client, "/v1/authorizations", auth_body(), key)
    assert again.json()["id"] != auth["id"]


def test_initial_config_and_seed_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from oms_gateway_simulator.config import seed_from_env

    env = {
        "OMS_GATEWAY_LATENCY_MS": "15",
        "OMS_GATEWAY_FAILURE_RATE": "0.1",
        "OMS_GATEWAY_TIMEOUT_RATE": "0.2",
        "OMS_GATEWAY_TIMEOUT_DELAY_SECONDS": "1.5",
        "OMS_GATEWAY_REFUND_REFUSED_TOKEN_ACTIVE": "false",
        "OMS_GATEWAY_SEED": "42",
    }
    assert GatewayConfig.from_env(env) == GatewayConfig(15, 0.1, 0.2, 1.5, False)
    assert GatewayConfig.from_env({}) == GatewayConfig(0, 0.0, 0.0, 30.0, True)
    assert seed_from_env(env) == 42
    assert seed_from_env({}) is None
    with pytest.raises(ValueError):
        GatewayConfig.from_env({"OMS_GATEWAY_FAILURE_RATE": "2"})
    with pytest.raises(ValueError):
        GatewayConfig.from_env({"OMS_GATEWAY_REFUND_REFUSED_TOKEN_ACTIVE": "maybe"})

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = create_app()
    assert app.state.gateway.current.config == GatewayConfig(15, 0.1, 0.2, 1.5, False)
