"""The console as a process next to the e2e stack's services, and a headless
Chromium (Debian's /usr/bin/chromium, driven by Playwright; never a downloaded
browser) to use it like staff do."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from oms_devtools.stack import SERVICES, Stack, free_port_block
from oms_runtime.db import libpq_url

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN_PASSWORD = "admin password for the e2e run"
STAFF_PASSWORD = "staff password for the e2e run"


@dataclass(frozen=True)
class ConsoleProcess:
    url: str


def _console_env(stack: Stack) -> dict[str, str]:
    return {
        **stack.common_env(),
        **{f"OMS_{name.upper()}_URL": stack.url(name) for name in SERVICES},
        "OMS_CONSOLE_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }


def create_user(stack: Stack, name: str, role: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "oms_console", "create-user", name, "--role", role],
        input=STAFF_PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
        env=_console_env(stack),
        timeout=60,
    )


@pytest.fixture(scope="module")
async def console_process(stack: Stack) -> AsyncIterator[ConsoleProcess]:
    env = _console_env(stack)
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "oms_console", "migrate"],
        check=True,
        capture_output=True,
        env=env,
        timeout=120,
    )
    # Staff accounts other tests left in the session's database would keep the
    # console from creating `admin` at its first start, as it does in production.
    connection = await asyncpg.connect(libpq_url(stack.database_url))
    try:
        await connection.execute(
            "TRUNCATE console.staff, console.sessions, console.sign_in_failures, "
            "console.audit_log CASCADE"
        )
    finally:
        await connection.close()
    port = free_port_block(1)
    stack.start("console", env, port=port)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if not stack.is_running("console") or time.monotonic() > deadline:
                raise RuntimeError(f"the console did not start:\n{stack.logs('console')[-3000:]}")
            await asyncio.sleep(0.2)
    for name, role in (("sue", "support"), ("walt", "warehouse")):
        await asyncio.to_thread(create_user, stack, name, role)
    yield ConsoleProcess(url)
    stack.stop("console")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():  # noqa: ASYNC240 (a stat, once)
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


@pytest.fixture
async def context(
    browser: Browser, console_process: ConsoleProcess
) -> AsyncIterator[BrowserContext]:
    made = await browser.new_context(
        base_url=console_process.url, viewport={"width": 1280, "height": 900}
    )
    made.set_default_timeout(15_000)
    yield made
    await made.close()


async def sign_in(page: Page, name: str, password: str) -> None:
    await page.goto("/sign-in")
    await page.get_by_label("Username").fill(name)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(lambda url: "/sign-in" not in url)


@pytest.fixture
async def admin_page(context: BrowserContext) -> Page:
    page = await context.new_page()
    await sign_in(page, "admin", ADMIN_PASSWORD)
    return page
