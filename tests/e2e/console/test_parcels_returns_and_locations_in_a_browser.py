"""Staff work with parcels, returns and stock locations in a real browser against
the real services: an admin dispatches a split order's two parcels from its page;
a warehouse user receives a returned parcel (one unit resellable, one damaged) and
the order page then shows the return refunded; an operator retries a return's
refund the gateway refused; an admin adds a location and restocks a product there."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from playwright.async_api import Browser, Page, expect

from oms_devtools.client import OmsClient, eventually

from .conftest import STAFF_PASSWORD, ConsoleProcess, sign_in
from .staff_scenarios import (
    a_return,
    gateway_can_refuse_refunds,
    labelled,
    receive,
    request_return,
    shipped_order_at,
    shipping_takes_returns,
    split_order,
    until_shows,
)

pytestmark = [pytest.mark.e2e, pytest.mark.single_pass]
TIMES = "\N{MULTIPLICATION SIGN}"  # as the order page lists a parcel's lines


def accept_confirmations(page: Page) -> None:
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))


async def test_an_admin_dispatches_a_split_orders_two_parcels_from_the_order_page(
    admin_page: Page, oms: OmsClient
) -> None:
    order = await split_order(oms)
    mug_from, tea_from = order["locations"]
    page = admin_page
    await page.goto(f"/orders/{order['id']}")
    parcels = page.locator("article.parcel")
    await expect(parcels).to_have_count(2)
    mug_parcel = parcels.filter(has_text=mug_from)
    tea_parcel = parcels.filter(has_text=tea_from)
    await expect(mug_parcel).to_contain_text(f"2 {TIMES} {order['skus'][0]}")
    await expect(tea_parcel).to_contain_text(f"1 {TIMES} {order['skus'][1]}")

    await mug_parcel.get_by_role("button", name=re.compile("^Dispatch parcel")).click()
    await expect(page.get_by_role("status")).to_contain_text("Parcel dispatched")
    await until_shows(page, page.locator(".heading .status"), "partially shipped")
    await expect(mug_parcel.locator("h3 .status")).not_to_have_text("created")
    # The first parcel's money is captured; the rest of the hold waits for the other.
    payment_status = page.locator("#payment-title ~ dl .status")
    await until_shows(page, payment_status, "partially captured")
    await expect(page.get_by_role("table").filter(has_text="Captures")).to_contain_text(mug_from)
    # Money captured may already be refunded, and what did not leave cancelled.
    await expect(page.get_by_role("button", name="Refund")).to_be_visible()
    await expect(page.get_by_role("button", name="Cancel order")).to_be_visible()

    await tea_parcel.get_by_role("button", name=re.compile("^Dispatch parcel")).click()
    await expect(page.get_by_role("status")).to_contain_text("Parcel dispatched")
    await until_shows(page, page.locator(".heading .status"), "shipped")
    await until_shows(page, payment_status, "captured")
    await expect(page.get_by_role("button", name=re.compile("^Dispatch parcel"))).to_have_count(0)
    shipped = await oms.order(order["id"])
    assert {p["status"] for p in shipped["fulfillments"]} == {"dispatched"}


async def test_a_warehouse_user_receives_a_return_and_the_order_shows_it_refunded(
    browser: Browser, console_process: ConsoleProcess, admin_page: Page, oms: OmsClient
) -> None:
    if not await shipping_takes_returns(oms):
        pytest.skip("the shipping service has no returns API yet (it comes with its returns part)")
    location = (await oms.create_location())["code"]
    order = await shipped_order_at(oms, location, quantity=2, unit_price=1250)
    sku = order["sku"]
    asked = await request_return(oms, order["id"], [(sku, 2)], "one chipped, one unwanted")
    label = (await labelled(oms, asked["id"]))["return_tracking_number"]

    # Another browser (its own cookies): the warehouse user, while admin stays signed in.
    walts_browser = await browser.new_context(base_url=console_process.url)
    try:
        warehouse = await walts_browser.new_page()
        accept_confirmations(warehouse)
        await sign_in(warehouse, "walt", STAFF_PASSWORD)
        await warehouse.get_by_role("link", name="Warehouse").click()
        await warehouse.get_by_role("link", name="Returns to receive").click()
        await warehouse.get_by_label("Location", exact=True).select_option(location)
        await warehouse.get_by_role("button", name="Show").click()
        receipt = warehouse.locator("section.return-receipt", has_text=label)
        await expect(receipt).to_contain_text(sku)
        await receipt.get_by_label(f"Resellable units of {sku}").fill("1")
        await receipt.get_by_label(f"Damaged units of {sku}").fill("1")
        await receipt.get_by_role("button", name=f"Receive return {label}").click()
        await expect(warehouse.get_by_role("status")).to_contain_text(
            "Return received: 1 resellable, 1 damaged"
        )
        await expect(warehouse.locator("section.return-receipt", has_text=label)).to_have_count(0)
    finally:
        await walts_browser.close()

    refunded = await eventually(
        lambda: a_return(oms, asked["id"]),
        lambda r: r["status"] == "refunded",
        40,
        "the return refunded",
    )
    assert refunded["refunded_amount"] == 2500
    # The resellable unit is back on the shelf it left from; the damaged one is not.
    assert (await oms.stock_at(sku))[location]["on_hand"] == 9

    page = admin_page
    await page.goto(f"/orders/{order['id']}")
    the_return = page.locator("article.return").first
    await until_shows(page, the_return.locator("h3 .status"), "refunded")
    await expect(the_return).to_contain_text("25.00 EUR, 25.00 EUR refunded")
    await expect(the_return.locator("tbody tr")).to_contain_text("mixed")
    await until_shows(page, page.locator("#payment-title ~ dl .status"), "refunded")
    await expect(page.locator(".timeline")).to_contain_text("return requested")
    # The audit log names who received it.
    await page.get_by_role("link", name="Audit log").click()
    row = page.locator("tbody tr", has_text="receive return").first
    await expect(row).to_contain_text("walt")


async def test_an_operator_finds_a_refused_return_refund_in_the_attention_queue_and_retries_it(
    admin_page: Page, oms: OmsClient
) -> None:
    if not (await shipping_takes_returns(oms) and await gateway_can_refuse_refunds(oms)):
        pytest.skip("returns at shipping and tok_refund_refused at the gateway are not here yet")
    order = await shipped_order_at(oms, "default", quantity=1, token="tok_refund_refused")
    asked = await request_return(oms, order["id"], [(order["sku"], 1)], "changed my mind")
    await labelled(oms, asked["id"])
    await receive(oms, asked["id"], [(order["sku"], 1, "resellable")])
    await eventually(
        lambda: a_return(oms, asked["id"]),
        lambda r: r["status"] == "requires_attention",
        40,
        "the refused refund to need an operator",
    )
    page = admin_page
    accept_confirmations(page)
    await page.get_by_role("link", name="Attention").click()
    returns = page.locator("section", has=page.get_by_role("heading", name="Returns that"))
    row = returns.locator("tr", has_text=order["id"][:8])
    await expect(row).to_contain_text("refund failed")
    await row.get_by_role("link").click()
    the_return = page.locator("article.return").first
    await expect(the_return.locator("h3 .status")).to_have_text("requires attention")
    await expect(the_return.get_by_role("button", name="Force: refunded by hand")).to_be_visible()
    try:
        await oms.configure_gateway(refund_refused_token_active=False)  # fixed at the gateway
        await the_return.get_by_role("button", name="Retry the refund of return 1").click()
        await expect(page.get_by_role("status")).to_contain_text("tried again")
        await until_shows(page, page.locator("article.return h3 .status"), "refunded")
    finally:
        await oms.configure_gateway(refund_refused_token_active=True)
    assert (await a_return(oms, asked["id"]))["refunded_amount"] == 1250


async def test_an_admin_adds_a_location_and_restocks_a_product_there(
    admin_page: Page, oms: OmsClient
) -> None:
    code = f"E2E-{uuid.uuid4().hex[:6].upper()}"
    product = await oms.create_product(on_hand=5)
    page = admin_page
    await page.get_by_role("link", name="Locations").click()
    await page.get_by_label("Code").fill(code)
    await page.get_by_label("Name").fill("Vienna store")
    await page.get_by_label("Country", exact=True).fill("AT")
    await page.get_by_label("Ships to (countries)").fill("at, de")
    await page.get_by_role("button", name="Add location").click()
    await expect(page.get_by_role("status")).to_contain_text(f"Location {code} added")
    await expect(page.locator("tr", has_text=code)).to_contain_text("AT, DE")

    await page.goto(f"/stock/{product['sku']}")
    await page.get_by_label("At location").select_option(code)
    await page.get_by_label("Quantity received").fill("7")
    await page.get_by_role("button", name="Restock").click()
    await expect(page.get_by_role("status")).to_contain_text(f"7 units of {product['sku']}")
    per_location = page.get_by_role("table").filter(has_text="Per location")
    await expect(per_location.locator("tr", has_text=code)).to_contain_text("7")
    await page.get_by_label("Location", exact=True).select_option(code)
    await page.get_by_role("button", name="Show").click()
    ledger = page.locator("section", has=page.get_by_role("heading", name=f"Ledger at {code}"))
    await expect(ledger.locator("tbody tr")).to_have_count(1)
    await expect(ledger.locator("tbody tr")).to_contain_text("restock")
    assert (await oms.stock_at(product["sku"]))[code]["on_hand"] == 7
