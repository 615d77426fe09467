"""The console app in process, on the session's throwaway database (its own schema
migrated like in production); the services it calls are not running, which the
tests of sessions, CSRF, roles and lockout do not need."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from oms_console.domain.roles import Role
from oms_console.main import create_app
from oms_console.settings import ConsoleSettings

PASSWORD = "correct horse battery"
UNREACHABLE = "http://127.0.0.1:9"  # discard port: nothing answers


@pytest.fixture(scope="session")
def console_database(migrated_database: str) -> str:
    subprocess.run(
        [sys.executable, "-m", "oms_console", "migrate"],
        check=True,
        env={**os.environ, "OMS_DATABASE_URL": migrated_database},
        capture_output=True,
        timeout=120,
    )
    return migrated_database


def console_settings(database_url: str, **overrides: Any) -> ConsoleSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_secret": "test-jwt-secret-that-is-long-enough-for-hs256",
        "order_url": UNREACHABLE,
        "inventory_url": UNREACHABLE,
        "payment_url": UNREACHABLE,
        "shipping_url": UNREACHABLE,
        "amqp_url": "amqp://guest:guest@127.0.0.1:9/",
        "console_upstream_timeout_seconds": 1.0,
        "console_throttle_base_seconds": 0.0,
        "db_pool_size": 2,
        "log_format": "json",
    }
    values.update(overrides)
    return ConsoleSettings(**values)


@dataclass
class Console:
    app: FastAPI
    client: httpx.AsyncClient
    password: str = PASSWORD

    @staticmethod
    def csrf_in(html: str) -> str:
        return csrf_in(html)

    async def add_user(self, name: str, role: Role, password: str = PASSWORD) -> None:
        await self.app.state.accounts.create_user(name, role, password)

    async def sign_in_form(self) -> str:
        page = await self.client.get("/sign-in")
        assert page.status_code == 200
        return csrf_in(page.text)

    async def sign_in(self, name: str, password: str = PASSWORD) -> httpx.Response:
        token = await self.sign_in_form()
        return await self.client.post(
            "/sign-in", data={"username": name, "password": password, "csrf_token": token}
        )

    async def csrf(self, path: str = "/audit") -> str:
        """The session's CSRF token, as a page's forms carry it."""
        page = await self.client.get(path)
        return csrf_in(page.text)

    async def sql(self, statement: str, **params: Any) -> Any:
        async with self.app.state.accounts.store.engine.begin() as conn:
            return await conn.execute(text(statement), params)


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


ConsoleFactory = Callable[..., Any]


@pytest.fixture
async def make_console(console_database: str) -> AsyncIterator[ConsoleFactory]:
    """Builds a console with settings overridden; runs its lifespan like uvicorn."""
    opened: list[Any] = []

    async def make(base_url: str = "http://console.test", **overrides: Any) -> Console:
        app = create_app(console_settings(console_database, **overrides))
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 50000)),
            base_url=base_url,
            follow_redirects=False,
        )
        opened.append((lifespan, client))
        return Console(app, client)

    engine_cleanup = create_app(console_settings(console_database)).state.accounts.store.engine
    async with engine_cleanup.begin() as conn:
        await conn.execute(
            text(
                "TRUNCATE console.staff, console.sessions, console.sign_in_failures, "
                "console.audit_log CASCADE"
            )
        )
    await engine_cleanup.dispose()
    yield make
    for lifespan, client in reversed(opened):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def console(make_console: ConsoleFactory) -> Console:
    made: Console = await make_console()
    return made
