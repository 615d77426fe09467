"""The forms for returns, stock locations and restocking per location: each carries
the CSRF token, each is refused to a role that may not use it (also with a valid
token), and what is plainly wrong is answered with a message naming the field,
before anything is sent to a service and without an audit entry. (The services
are not running here: what passes the checks is tried, fails and is audited with
what would have been sent.)"""

from __future__ import annotations

from typing import Any

import pytest

from oms_console.domain.roles import Role

pytestmark = pytest.mark.integration
Console = Any  # the fixture type lives in conftest.py

ORDER = "0b7e6f3a-0000-4000-8000-000000000001"
RETURN = "0b7e6f3a-0000-4000-8000-0000000000f1"
RECEIVE = f"/warehouse/returns/{RETURN}/receive"


async def audit_rows(console: Console) -> list[dict[str, Any]]:
    rows = await console.sql(
        "SELECT staff_name, action, target, outcome, detail FROM console.audit_log ORDER BY id"
    )
    return [dict(row._mapping) for row in rows]


async def signed_in_as(console: Console, role: Role) -> str:
    """Signs in a fresh member of `role`; returns the session's CSRF token."""
    await console.add_user("sam", role)
    await console.sign_in("sam")
    return str(await console.csrf("/warehouse/notes/x" if role is Role.WAREHOUSE else "/feed"))


async def flash_after(console: Console, response: Any) -> str:
    """The message shown on the page the form came back to."""
    assert response.status_code == 303, response.text
    page = await console.client.get(response.headers["location"])
    return str(page.text)


def receive_form(token: str, *lines: tuple[str, int, str, str]) -> dict[str, str]:
    form = {"csrf_token": token, "lines": str(len(lines)), "order_id": ORDER}
    form["next"] = "/warehouse/returns"
    for i, (sku, announced, resellable, damaged) in enumerate(lines):
        form |= {
            f"sku-{i}": sku,
            f"announced-{i}": str(announced),
            f"resellable-{i}": resellable,
            f"damaged-{i}": damaged,
        }
    return form


# -- roles -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "path", "form"),
    [
        (Role.SUPPORT, RECEIVE, {"lines": "1", "sku-0": "MUG", "announced-0": "1"}),
        (Role.WAREHOUSE, f"/returns/{RETURN}/approve", {"order_id": ORDER}),
        (Role.WAREHOUSE, f"/returns/{RETURN}/reject", {"reason": "no"}),
        (Role.SUPPORT, f"/returns/{RETURN}/retry", {"order_id": ORDER}),
        (Role.SUPPORT, f"/returns/{RETURN}/force", {"order_id": ORDER}),
        (Role.WAREHOUSE, f"/returns/{RETURN}/force", {"order_id": ORDER}),
        (Role.WAREHOUSE, "/locations", {"code": "BER", "name": "Berlin", "country": "DE"}),
        (Role.SUPPORT, "/locations", {"code": "BER", "name": "Berlin", "country": "DE"}),
    ],
)
async def test_return_and_location_actions_are_refused_to_roles_without_them(
    console: Console, role: Role, path: str, form: dict[str, str]
) -> None:
    token = await signed_in_as(console, role)
    response = await console.client.post(path, data={**form, "csrf_token": token})
    assert response.status_code == 403
    assert "may not" in response.text
    assert await audit_rows(console) == []


@pytest.mark.parametrize(
    ("role", "path", "allowed"),
    [
        (Role.WAREHOUSE, "/warehouse/returns", True),
        (Role.SUPPORT, "/warehouse/returns", False),
        (Role.WAREHOUSE, "/locations", True),
        (Role.SUPPORT, "/locations", False),
        (Role.ADMIN, "/locations", True),
    ],
)
async def test_the_returns_to_receive_and_the_locations_pages_are_for_their_roles(
    console: Console, role: Role, path: str, allowed: bool
) -> None:
    await signed_in_as(console, role)
    response = await console.client.get(path)
    assert response.status_code == (200 if allowed else 403)


async def test_the_location_form_is_offered_to_admin_only(console: Console) -> None:
    await signed_in_as(console, Role.WAREHOUSE)
    page = (await console.client.get("/locations")).text
    assert "Add a location" not in page
    # The inventory service is away: the page says so instead of failing.
    assert "inventory service is unreachable" in page


async def test_support_may_approve_a_return_and_the_attempt_is_audited(console: Console) -> None:
    token = await signed_in_as(console, Role.SUPPORT)
    response = await console.client.post(
        f"/returns/{RETURN}/approve", data={"csrf_token": token, "order_id": ORDER}
    )
    assert response.headers["location"] == f"/orders/{ORDER}"
    (row,) = await audit_rows(console)
    assert (row["staff_name"], row["action"], row["target"], row["outcome"]) == (
        "sam",
        "approve return",
        ORDER,
        "failed",
    )
    assert row["detail"]["return_id"] == RETURN


async def test_the_new_forms_without_the_csrf_token_are_403(console: Console) -> None:
    await signed_in_as(console, Role.ADMIN)
    for path in (RECEIVE, f"/returns/{RETURN}/approve", "/locations", "/stock/MUG-1/restock"):
        response = await console.client.post(path, data={"quantity": "1", "order_id": ORDER})
        assert response.status_code == 403, path
    assert await audit_rows(console) == []


# -- receiving a return ------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ((("MUG", 2, "3", "0"),), "MUG, resellable: give a whole number from 0 to 2."),
        ((("MUG", 2, "1", "x"),), "MUG, damaged: give a whole number from 0 to 2."),
        ((("MUG", 2, "2", "1"),), "MUG: 3 units counted, but the return announced 2."),
        ((("MUG", 2, "0", "0"), ("TEA", 1, "", "")), "Count at least one unit that arrived."),
        ((("<b>", 2, "1", "0"),), "The receive form was incomplete. Reload the page."),
    ],
)
async def test_a_count_that_cannot_be_received_is_refused_with_a_message_and_sends_nothing(
    console: Console, lines: tuple[tuple[str, int, str, str], ...], message: str
) -> None:
    token = await signed_in_as(console, Role.WAREHOUSE)
    response = await console.client.post(RECEIVE, data=receive_form(token, *lines))
    assert response.headers["location"] == "/warehouse/returns"
    assert message in await flash_after(console, response)
    assert await audit_rows(console) == []


async def test_a_receive_form_missing_its_lines_is_refused(console: Console) -> None:
    token = await signed_in_as(console, Role.WAREHOUSE)
    for broken in ({"lines": "0"}, {"lines": "1"}, {"lines": "many"}):
        response = await console.client.post(
            RECEIVE, data={"csrf_token": token, "next": "/warehouse/returns", **broken}
        )
        assert "The receive form was incomplete" in await flash_after(console, response)
    assert await audit_rows(console) == []


async def test_a_valid_count_is_sent_as_one_entry_per_sku_and_condition(
    console: Console,
) -> None:
    token = await signed_in_as(console, Role.WAREHOUSE)
    response = await console.client.post(
        RECEIVE,
        data=receive_form(token, ("MUG", 2, "1", "1"), ("TEA", 3, "", "0")),
    )
    assert "shipping service is unreachable" in await flash_after(console, response)
    (row,) = await audit_rows(console)
    assert (row["action"], row["target"], row["outcome"]) == ("receive return", ORDER, "failed")
    assert row["detail"]["items"] == [
        {"sku": "MUG", "quantity": 1, "condition": "resellable"},
        {"sku": "MUG", "quantity": 1, "condition": "damaged"},
    ]


async def test_the_receive_form_comes_back_only_to_a_page_of_this_site(console: Console) -> None:
    token = await signed_in_as(console, Role.WAREHOUSE)
    form = receive_form(token, ("MUG", 1, "1", "0")) | {"next": "https://evil.example/"}
    response = await console.client.post(RECEIVE, data=form)
    assert response.headers["location"] == "/"


# -- rejecting a return ------------------------------------------------------------


async def test_a_rejection_needs_a_reason(console: Console) -> None:
    token = await signed_in_as(console, Role.SUPPORT)
    response = await console.client.post(
        f"/returns/{RETURN}/reject", data={"csrf_token": token, "order_id": ORDER, "reason": " "}
    )
    assert response.headers["location"] == f"/orders/{ORDER}"
    page = await console.client.get("/attention")
    assert "Reason for rejecting: tell the customer why." in page.text
    assert await audit_rows(console) == []


async def test_an_action_on_something_that_is_not_a_return_id_is_404(console: Console) -> None:
    token = await signed_in_as(console, Role.ADMIN)
    response = await console.client.post(
        "/returns/not-a-return/approve", data={"csrf_token": token, "order_id": ORDER}
    )
    assert response.status_code == 404
    assert await audit_rows(console) == []


# -- locations and restocking --------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"code": "BER 1", "name": "Berlin", "country": "DE"}, "Code: letters, digits"),
        ({"code": "BER", "name": "", "country": "DE"}, "Name: give the location a name."),
        ({"code": "BER", "name": "Berlin", "country": "Germany"}, "Country: a two-letter"),
        (
            {"code": "BER", "name": "Berlin", "country": "DE", "priority": "soon"},
            "Priority: a whole number",
        ),
        (
            {"code": "BER", "name": "Berlin", "country": "DE", "serves": "DE Austria"},
            "Ships to: Austria is not a two-letter ISO code",
        ),
    ],
)
async def test_a_location_form_that_is_plainly_wrong_names_the_field_and_sends_nothing(
    console: Console, form: dict[str, str], message: str
) -> None:
    token = await signed_in_as(console, Role.ADMIN)
    response = await console.client.post("/locations", data={**form, "csrf_token": token})
    assert response.headers["location"] == "/locations"
    assert message in await flash_after(console, response)
    assert await audit_rows(console) == []


async def test_a_new_location_is_sent_tidied_and_audited(console: Console) -> None:
    token = await signed_in_as(console, Role.ADMIN)
    form = {"code": "BER-1", "name": "Berlin", "country": "de", "serves": "de, at"}
    response = await console.client.post("/locations", data={**form, "csrf_token": token})
    assert response.headers["location"] == "/locations"
    (row,) = await audit_rows(console)
    assert (row["action"], row["target"], row["outcome"]) == ("add location", "BER-1", "failed")
    assert row["detail"]["serves"] == ["AT", "DE"] and row["detail"]["country"] == "DE"


async def test_a_restock_names_its_location_default_when_none_is_chosen(
    console: Console,
) -> None:
    token = await signed_in_as(console, Role.WAREHOUSE)
    for location, expected in (("BER-1", "BER-1"), ("", "default")):
        await console.client.post(
            "/stock/MUG-1/restock",
            data={"csrf_token": token, "quantity": "5", "location": location},
        )
        row = (await audit_rows(console))[-1]
        assert (row["detail"]["quantity"], row["detail"]["location"]) == (5, expected)


async def test_a_restock_at_a_location_that_cannot_be_one_is_refused(console: Console) -> None:
    token = await signed_in_as(console, Role.WAREHOUSE)
    response = await console.client.post(
        "/stock/MUG-1/restock",
        data={"csrf_token": token, "quantity": "5", "location": "../admin"},
    )
    assert response.headers["location"] == "/stock/MUG-1"
    assert await audit_rows(console) == []
