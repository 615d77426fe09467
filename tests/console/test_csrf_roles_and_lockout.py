"""Every form is CSRF-protected, roles are enforced on the server, and repeated
failed sign-ins slow down and then lock an account (and block a noisy address)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from oms_console.domain.roles import Role

pytestmark = pytest.mark.integration
Console = Any  # the fixture type lives in conftest.py

ORDER = "0b7e6f3a-0000-4000-8000-000000000001"


async def audit_rows(console: Console) -> list[tuple[str, str, str]]:
    rows = await console.sql(
        "SELECT staff_name, action, outcome FROM console.audit_log ORDER BY id"
    )
    return [tuple(row) for row in rows]


def all_routes(routes: list[Any]) -> list[Any]:
    """Routes, with those of included routers (FastAPI wraps them)."""
    found = []
    for route in routes:
        included = getattr(route, "original_router", None)
        found.extend(all_routes(included.routes) if included is not None else [route])
    return found


# -- CSRF ------------------------------------------------------------------------


async def test_a_post_without_the_csrf_token_is_403_and_does_nothing(console: Console) -> None:
    await console.add_user("ada", Role.ADMIN)
    await console.sign_in("ada")
    response = await console.client.post(f"/orders/{ORDER}/cancel", data={})
    assert response.status_code == 403
    assert "security token" in response.text
    assert await audit_rows(console) == []


async def test_a_post_with_another_sessions_csrf_token_is_403(
    console: Console, make_console: Any
) -> None:
    await console.add_user("ada", Role.ADMIN)
    await console.add_user("bob", Role.ADMIN)
    other = await make_console()
    await other.sign_in("bob")
    bobs_token = await other.csrf()
    await console.sign_in("ada")
    response = await console.client.post(f"/orders/{ORDER}/cancel", data={"csrf_token": bobs_token})
    assert response.status_code == 403
    assert await audit_rows(console) == []


async def test_every_post_route_refuses_a_request_without_the_csrf_token(
    console: Console,
) -> None:
    await console.add_user("ada", Role.ADMIN)
    await console.sign_in("ada")
    posts = [
        route.path_format
        for route in all_routes(console.app.routes)
        if isinstance(route, APIRoute) and "POST" in route.methods
    ]
    assert len(posts) >= 16
    for path in posts:
        concrete = (
            path.replace("{order_id}", ORDER)
            .replace("{payment_id}", ORDER)
            .replace("{shipment_id}", ORDER)
            .replace("{return_id}", ORDER)
            .replace("{sku}", "MUG-1")
            .replace("{service}", "order")
            .replace("{key}", ORDER)
        )
        response = await console.client.post(concrete, data={"amount": "1", "quantity": "1"})
        assert response.status_code == 403, path
    assert await audit_rows(console) == []


async def test_the_sign_in_form_without_its_token_is_403(console: Console) -> None:
    await console.add_user("ada", Role.ADMIN)
    response = await console.client.post(
        "/sign-in", data={"username": "ada", "password": console.password}
    )
    assert response.status_code == 403
    assert "oms_console_session" not in console.client.cookies


async def test_a_post_with_the_token_is_carried_out_and_audited_even_when_it_fails(
    console: Console,
) -> None:
    """The services are not running here: the cancel fails, and says so."""
    await console.add_user("ada", Role.SUPPORT)
    await console.sign_in("ada")
    token = await console.csrf("/orders/not-an-id")
    response = await console.client.post(f"/orders/{ORDER}/cancel", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"] == f"/orders/{ORDER}"
    assert await audit_rows(console) == [("ada", "cancel order", "failed")]


# -- roles -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "path", "allowed"),
    [
        (Role.SUPPORT, "/audit", False),
        (Role.SUPPORT, "/dead-letters", False),
        (Role.SUPPORT, "/capacity", False),
        (Role.SUPPORT, "/warehouse", False),
        (Role.SUPPORT, "/stock", False),
        (Role.WAREHOUSE, "/orders", False),
        (Role.WAREHOUSE, "/attention", False),
        (Role.WAREHOUSE, "/dead-letters", False),
        (Role.WAREHOUSE, "/feed", False),
        (Role.ADMIN, "/audit", True),
        (Role.ADMIN, "/feed", True),
        (Role.SUPPORT, "/feed", True),
    ],
)
async def test_roles_are_enforced_on_the_server_for_pages(
    console: Console, role: Role, path: str, allowed: bool
) -> None:
    await console.add_user("sam", role)
    await console.sign_in("sam")
    response = await console.client.get(path)
    if allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert "may not" in response.text


@pytest.mark.parametrize(
    ("role", "path", "form"),
    [
        (Role.SUPPORT, f"/payments/{ORDER}/refund", {"amount": "5", "currency": "EUR"}),
        (Role.SUPPORT, f"/orders/{ORDER}/force", {}),
        (Role.SUPPORT, f"/orders/{ORDER}/retry", {}),
        (Role.SUPPORT, f"/shipments/{ORDER}/dispatch", {}),
        (Role.WAREHOUSE, f"/orders/{ORDER}/cancel", {}),
        (Role.WAREHOUSE, f"/payments/{ORDER}/refund", {"amount": "5", "currency": "EUR"}),
        (Role.WAREHOUSE, f"/dead-letters/order/{ORDER}/replay", {}),
        (Role.SUPPORT, "/stock/MUG-1/restock", {"quantity": "5"}),
    ],
)
async def test_roles_are_enforced_on_the_server_for_actions_with_a_valid_token(
    console: Console, role: Role, path: str, form: dict[str, str]
) -> None:
    await console.add_user("sam", role)
    await console.sign_in("sam")
    token = await console.csrf("/feed" if role is Role.SUPPORT else "/warehouse/notes/x")
    response = await console.client.post(path, data={**form, "csrf_token": token})
    assert response.status_code == 403
    assert "may not" in response.text
    assert await audit_rows(console) == []


async def test_the_navigation_offers_only_what_the_role_may_use(console: Console) -> None:
    await console.add_user("wendy", Role.WAREHOUSE)
    await console.sign_in("wendy")
    page = (await console.client.get("/warehouse/notes/x")).text
    assert 'href="/warehouse"' in page and 'href="/stock"' in page
    assert 'href="/orders"' not in page and 'href="/dead-letters"' not in page


# -- lockout ---------------------------------------------------------------------


async def test_repeated_failures_slow_the_account_down(make_console: Any) -> None:
    console = await make_console(console_throttle_base_seconds=30)
    await console.add_user("ada", Role.ADMIN)
    assert (await console.sign_in("ada", "wrong password 1")).status_code == 401
    # The next attempt comes too soon: refused without looking at the password.
    refused = await console.sign_in("ada", console.password)
    assert refused.status_code == 429
    assert 25 <= int(refused.headers["retry-after"]) <= 30
    assert "oms_console_session" not in console.client.cookies
    await console.sql(
        "UPDATE console.sign_in_failures SET occurred_at = occurred_at - interval '31 seconds'"
    )
    assert (await console.sign_in("ada", console.password)).status_code == 303


async def test_the_account_locks_after_repeated_failures_even_for_the_right_password(
    make_console: Any,
) -> None:
    console = await make_console(console_lockout_threshold=3, console_lockout_seconds=600)
    await console.add_user("ada", Role.ADMIN)
    for attempt in range(3):
        assert (await console.sign_in("ada", f"wrong {attempt}")).status_code == 401
    locked = await console.sign_in("ada", console.password)
    assert locked.status_code == 429
    assert "locked" in locked.text
    assert 590 <= int(locked.headers["retry-after"]) <= 600
    await console.sql(
        "UPDATE console.sign_in_failures SET occurred_at = occurred_at - interval '11 minutes'"
    )
    assert (await console.sign_in("ada", console.password)).status_code == 303


async def test_a_success_forgets_the_earlier_failures(make_console: Any) -> None:
    console = await make_console(console_lockout_threshold=3)
    await console.add_user("ada", Role.ADMIN)
    for _ in range(2):
        await console.sign_in("ada", "wrong")
    assert (await console.sign_in("ada", console.password)).status_code == 303
    for _ in range(2):
        assert (await console.sign_in("ada", "wrong")).status_code == 401
    assert (await console.sign_in("ada", console.password)).status_code == 303


async def test_one_address_trying_many_accounts_is_blocked(make_console: Any) -> None:
    console = await make_console(console_address_failure_limit=4)
    await console.add_user("ada", Role.ADMIN)
    for name in ("a1", "a2", "a3", "a4"):
        assert (await console.sign_in(name, "guess")).status_code == 401
    blocked = await console.sign_in("ada", console.password)
    assert blocked.status_code == 429
    assert "your address" in blocked.text
