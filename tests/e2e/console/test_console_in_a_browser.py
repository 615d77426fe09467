"""Staff use the console in a real browser against the real services: sign in, find
an order, dispatch it, refund part of it, be denied what the role may not do,
replay a dead letter, watch events arrive. (Parcels, returns and locations:
test_parcels_returns_and_locations_in_a_browser.py.)"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from playwright.async_api import BrowserContext, Page, expect

from oms_contracts import Envelope
from oms_contracts import inventory as inventory_msgs
from oms_devtools.client import OmsClient, eventually
from oms_devtools.stack import Stack

from .conftest import ADMIN_PASSWORD, STAFF_PASSWORD, ConsoleProcess, sign_in
from .staff_scenarios import (
    dispatched,
    labelled,
    request_return,
    shipped_order_at,
    shipping_takes_returns,
    split_order,
)

# The console talks to the services over HTTP whatever their replica count: once is enough.
pytestmark = [pytest.mark.e2e, pytest.mark.single_pass]


async def fulfilling_order(oms: OmsClient, quantity: int = 2) -> dict[str, Any]:
    product = await oms.create_product(on_hand=10, unit_price=1250)
    placed = await oms.place_order([(product["sku"], quantity)])
    assert placed.status_code == 202, placed.text
    return await oms.wait_for_order(placed.json()["id"], "fulfilling")


async def shipped_order(oms: OmsClient) -> dict[str, Any]:
    order = await fulfilling_order(oms)
    shipment = await oms.shipment_of(order["id"])
    assert shipment is not None
    assert (await oms.dispatch(shipment["id"])).status_code == 200
    await eventually(
        lambda: oms.payment_of(order["id"]),
        lambda p: p is not None and p["status"] == "captured",
        20,
        "the capture",
    )
    return await oms.wait_for_order(order["id"], "shipped")


async def until_status_shows(page: Page, status: str, timeout: float = 20.0) -> None:
    """Reload the order page until its status reads `status` (as staff would)."""
    deadline = time.monotonic() + timeout
    heading_status = page.locator(".heading .status")
    while (await heading_status.inner_text()).strip() != status:
        assert time.monotonic() < deadline, f"the order never showed {status}"
        await asyncio.sleep(0.3)
        await page.reload()


async def test_staff_sign_in_find_an_order_by_id_and_dispatch_its_parcel(
    admin_page: Page, oms: OmsClient
) -> None:
    order = await fulfilling_order(oms)
    page = admin_page
    await page.get_by_role("link", name="Orders").click()
    await page.get_by_label("Search: order id, customer or SKU").fill(order["id"])
    await page.get_by_role("button", name="Search").click()
    await page.wait_for_url(f"**/orders/{order['id']}")
    await expect(page.get_by_role("heading", level=1)).to_contain_text(order["id"])
    await expect(page.locator(".heading .status")).to_have_text("fulfilling")

    await page.get_by_role("button", name="Dispatch parcel 1").click()
    await expect(page.get_by_role("status")).to_contain_text("Parcel dispatched")
    await until_status_shows(page, "shipped")
    await expect(page.locator("article.parcel")).to_contain_text("dispatched")
    # The console's audit log names who did it.
    await page.get_by_role("link", name="Audit log").click()
    await expect(page.locator("tbody tr").first).to_contain_text("dispatch parcel")
    await expect(page.locator("tbody tr").first).to_contain_text("admin")


async def test_an_admin_refunds_part_of_a_captured_payment(
    admin_page: Page, oms: OmsClient
) -> None:
    order = await shipped_order(oms)
    page = admin_page
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.goto(f"/orders/{order['id']}")
    await page.get_by_label("Refund amount (EUR)").fill("5.00")
    await page.get_by_label("Reason").fill("one mug arrived chipped")
    await page.get_by_role("button", name="Refund").click()
    await expect(page.get_by_role("status")).to_contain_text("Refund of 5.00 EUR requested")
    refunded = await eventually(
        lambda: oms.payment_of(order["id"]),
        lambda p: p is not None and p["refunded_amount"] == 500,
        20,
        "the partial refund",
    )
    assert refunded["status"] == "partially_refunded"
    await page.reload()
    await expect(page.get_by_role("table").filter(has_text="Refunds")).to_contain_text(
        "one mug arrived chipped"
    )


async def test_a_support_user_is_denied_the_refund(context: BrowserContext, oms: OmsClient) -> None:
    order = await shipped_order(oms)
    page = await context.new_page()
    await sign_in(page, "sue", STAFF_PASSWORD)
    await page.goto(f"/orders/{order['id']}")
    await expect(page.locator(".heading .status")).to_have_text("shipped")
    assert await page.get_by_role("button", name="Refund").count() == 0
    # Not only hidden: the server refuses the request even with a valid CSRF token.
    payment = await oms.payment_of(order["id"])
    assert payment is not None
    token = await page.locator('input[name="csrf_token"]').first.get_attribute("value")
    response = await page.request.post(
        f"/payments/{payment['id']}/refund",
        form={"csrf_token": token or "", "amount": "5", "currency": "EUR", "order_id": order["id"]},
    )
    assert response.status == 403
    assert "may not refund payments" in await response.text()
    assert (await oms.payment_of(order["id"]) or {})["refunded_amount"] == 0


async def park_a_dead_letter(amqp_url: str, queue: str) -> Envelope:
    """A message the service gave up on (parked by hand here: the fault is gone)."""
    envelope = Envelope.wrap(
        inventory_msgs.ReleaseStock(order_id=str(uuid.uuid4()), reason="console e2e"),
        correlation_id=None,
    )
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(
                envelope.model_dump_json().encode(),
                message_id=str(envelope.message_id),
                headers={"x-oms-attempt": 4, "x-oms-error": "RuntimeError('database hiccup')"},
            ),
            routing_key=f"{queue}.dead",
        )
    return envelope


async def test_an_operator_replays_a_dead_letter(
    admin_page: Page, test_amqp_url: str, stack: Stack
) -> None:
    envelope = await park_a_dead_letter(test_amqp_url, "oms.inventory")
    key = str(envelope.message_id)
    page = admin_page
    await page.get_by_role("link", name="Dead letters").click()
    section = page.locator(
        "section", has=page.get_by_role("heading", name=re.compile("^inventory"))
    )
    row = section.locator("tr", has_text=key[:13])
    await expect(row).to_contain_text("inventory.release_stock")
    await expect(row).to_contain_text("database hiccup")
    await row.get_by_role("button", name="Replay").click()
    await expect(page.get_by_role("status")).to_contain_text(f"Dead letter {key} replayed")
    await expect(page.locator("tr", has_text=key[:13])).to_have_count(0)
    await page.get_by_role("link", name="Audit log").click()
    await expect(page.locator("tbody tr").first).to_contain_text("replay dead letter")


async def test_the_live_feed_shows_events_as_they_happen(admin_page: Page, oms: OmsClient) -> None:
    page = admin_page
    await page.get_by_role("link", name="Live feed").click()
    await expect(page.locator("#feed-state")).to_contain_text("Connected")
    order = await fulfilling_order(oms, quantity=1)
    await expect(
        page.locator("#feed li", has_text="order.created").filter(has_text=order["id"][:8])
    ).to_have_count(1)


SCREENSHOTS = os.environ.get("OMS_CONSOLE_SCREENSHOTS")


async def test_screenshots_of_the_main_pages(
    context: BrowserContext,
    browser_context_phone: BrowserContext,
    oms: OmsClient,
    test_amqp_url: str,
    tmp_path: Path,
) -> None:
    """Every main page renders for its role (and, with OMS_CONSOLE_SCREENSHOTS=DIR,
    `make screenshots`, is saved there for the README)."""
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    # A split order that shipped from two locations, with a return asked for.
    split = await split_order(oms)
    await dispatched(oms, split["id"])
    await request_return(oms, split["id"], [(split["skus"][0], 1)], "arrived chipped")
    if await shipping_takes_returns(oms):
        # Another one waiting at the warehouse, with its label.
        returned = await shipped_order_at(oms, split["locations"][0])
        asked = await request_return(oms, returned["id"], [(returned["sku"], 2)], "too small")
        await labelled(oms, asked["id"])
    waiting = await fulfilling_order(oms)
    await fulfilling_order(oms)
    await oms.create_product(on_hand=1, low_stock_threshold=3, reorder_quantity=20)
    await park_a_dead_letter(test_amqp_url, "oms.payment")
    page = await context.new_page()
    await sign_in(page, "admin", ADMIN_PASSWORD)
    await page.goto("/capacity")  # a first sample, so the charts have two points
    shots = {
        "orders": "/orders",
        "order": f"/orders/{split['id']}",
        "attention": "/attention",
        "warehouse": "/warehouse",
        "warehouse-returns": "/warehouse/returns",
        "dispatch-note": f"/warehouse/notes/{(await oms.shipment_of(waiting['id']) or {})['id']}",
        "stock": "/stock",
        "product": f"/stock/{split['skus'][0]}",
        "locations": "/locations",
        "replenishment": "/replenishments",
        "dead-letters": "/dead-letters",
        "capacity": "/capacity",
    }
    for name, path in shots.items():
        response = await page.goto(path)
        assert response is not None and response.status == 200, path
        await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    await page.goto("/feed")
    await expect(page.locator("#feed-state")).to_contain_text("Connected")
    await fulfilling_order(oms, quantity=1)
    await expect(page.locator("#feed li").first).to_be_visible()
    await page.screenshot(path=str(folder / "live-feed.png"))
    phone = await browser_context_phone.new_page()
    await phone.goto("/sign-in")
    await phone.screenshot(path=str(folder / "phone-sign-in.png"))
    await sign_in(phone, "admin", ADMIN_PASSWORD)
    await phone.goto(f"/orders/{waiting['id']}")
    await phone.screenshot(path=str(folder / "phone-order.png"), full_page=True)
    assert len(list(folder.glob("*.png"))) >= 15


@pytest.fixture
async def browser_context_phone(browser: Any, console_process: ConsoleProcess) -> Any:
    made = await browser.new_context(
        base_url=console_process.url,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    yield made
    await made.close()
