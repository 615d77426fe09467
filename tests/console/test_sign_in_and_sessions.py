"""Signing in and out, the session cookie, and sessions that expire."""

from __future__ import annotations

import re
from typing import Any

import pytest

from oms_console.domain.roles import Role

pytestmark = pytest.mark.integration
Console = Any  # the fixture type lives in conftest.py


async def test_the_sign_in_form_labels_its_inputs_and_has_a_sign_in_button(
    console: Console,
) -> None:
    page = (await console.client.get("/sign-in")).text
    assert re.search(r'<label for="username">Username</label>', page)
    assert re.search(r'<input id="username" name="username"', page)
    assert re.search(r'<label for="password">Password</label>', page)
    assert re.search(r'<input id="password" name="password" type="password"', page)
    assert re.search(r'<button type="submit"[^>]*>Sign in</button>', page)


async def test_pages_ask_for_a_sign_in_first(console: Console) -> None:
    response = await console.client.get("/orders?status=paid")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=/orders%3Fstatus%3Dpaid"


async def test_signing_in_sets_an_httponly_samesite_session_cookie(console: Console) -> None:
    await console.add_user("ada", Role.ADMIN)
    response = await console.sign_in("ada")
    assert response.status_code == 303
    assert response.headers["location"] == "/orders"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("oms_console_session=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    audit = await console.client.get("/audit")
    assert audit.status_code == 200
    assert "ada" in audit.text


async def test_the_session_cookie_is_secure_over_https(make_console: Any) -> None:
    console = await make_console(base_url="https://console.test")
    await console.add_user("ada", Role.ADMIN)
    response = await console.sign_in("ada")
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("oms_console_session=")
    )
    assert "Secure" in cookie
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_only_a_hash_of_the_session_token_is_stored(console: Console) -> None:
    await console.add_user("ada", Role.ADMIN)
    await console.sign_in("ada")
    token = console.client.cookies["oms_console_session"]
    stored = (await console.sql("SELECT token_hash FROM console.sessions")).scalars().all()
    assert len(stored) == 1
    assert token not in stored[0]


async def test_a_wrong_password_is_refused_with_the_same_answer_as_an_unknown_name(
    console: Console,
) -> None:
    await console.add_user("ada", Role.ADMIN)
    wrong_password = await console.sign_in("ada", "not the password")
    unknown_name = await console.sign_in("nobody", "not the password")
    assert wrong_password.status_code == unknown_name.status_code == 401
    assert "Wrong username or password." in wrong_password.text
    assert "Wrong username or password." in unknown_name.text
    assert "oms_console_session" not in console.client.cookies


async def test_signing_out_ends_the_session_on_the_server(console: Console) -> None:
    await console.add_user("ada", Role.ADMIN)
    await console.sign_in("ada")
    stolen = console.client.cookies["oms_console_session"]
    token = await console.csrf()
    out = await console.client.post("/sign-out", data={"csrf_token": token})
    assert out.status_code == 303
    assert (await console.sql("SELECT count(*) FROM console.sessions")).scalar() == 0
    console.client.cookies.set("oms_console_session", stolen)
    assert (await console.client.get("/audit")).status_code == 303  # back to sign-in


async def test_a_session_left_idle_too_long_ends(console: Console) -> None:
    await console.add_user("ada", Role.ADMIN)
    await console.sign_in("ada")
    assert (await console.client.get("/audit")).status_code == 200
    await console.sql("UPDATE console.sessions SET last_seen_at = now() - interval '31 minutes'")
    assert (await console.client.get("/audit")).status_code == 303
    assert (await console.sql("SELECT count(*) FROM console.sessions")).scalar() == 0


async def test_a_session_ends_at_its_absolute_lifetime_however_busy(console: Console) -> None:
    await console.add_user("ada", Role.ADMIN)
    await console.sign_in("ada")
    await console.sql(
        "UPDATE console.sessions SET created_at = now() - interval '13 hours', "
        "expires_at = now() - interval '1 hour', last_seen_at = now()"
    )
    assert (await console.client.get("/audit")).status_code == 303


async def test_a_sign_in_goes_back_to_the_page_asked_for_but_never_to_another_site(
    console: Console,
) -> None:
    await console.add_user("ada", Role.ADMIN)
    token = await console.sign_in_form()
    here = await console.client.post(
        "/sign-in",
        data={
            "username": "ada",
            "password": console.password,
            "csrf_token": token,
            "next": "/stock?low=1",
        },
    )
    assert here.headers["location"] == "/stock?low=1"
    token = await console.sign_in_form()
    elsewhere = await console.client.post(
        "/sign-in",
        data={
            "username": "ada",
            "password": console.password,
            "csrf_token": token,
            "next": "//evil.example/x",
        },
    )
    assert elsewhere.headers["location"] == "/orders"


async def test_every_page_carries_the_security_headers(console: Console) -> None:
    response = await console.client.get("/sign-in")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


async def test_the_admin_password_setting_creates_admin_only_when_no_account_exists(
    make_console: Any,
) -> None:
    first = await make_console(console_admin_password="first admin password")
    assert (await first.sign_in("admin", "first admin password")).status_code == 303
    again = await make_console(console_admin_password="another password here")
    assert (await again.sign_in("admin", "another password here")).status_code == 401
    names = (await again.sql("SELECT name, role FROM console.staff")).all()
    assert [tuple(row) for row in names] == [("admin", "admin")]
