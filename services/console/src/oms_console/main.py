"""Composition root of the console."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oms_console.accounts import Accounts
from oms_console.db.store import ConsoleStore
from oms_console.settings import ConsoleSettings
from oms_console.upstream import Upstream, UpstreamError
from oms_console.web import auth_routes, operations, orders, warehouse
from oms_console.web.feed import EventFeed
from oms_console.web.operations import CapacityHistory
from oms_console.web.render import STATIC_DIR, page
from oms_console.web.security import Forbidden, SignInRequired
from oms_runtime.auth import TokenPolicy
from oms_runtime.db import create_engine
from oms_runtime.http import RequestContextMiddleware

log = logging.getLogger("oms.console")

# No inline script or style, nothing from elsewhere: what the console shows comes
# from this origin only.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        b"form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = {name.lower() for name, _ in headers}
                for name, value in SECURITY_HEADERS:
                    if static and name == b"cache-control":
                        continue  # stylesheets and scripts may be cached
                    if name not in present:
                        headers.append((name, value))
                if scope.get("scheme") == "https":
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
            await send(message)

        await self.app(scope, receive, with_headers)


async def _tidy_now_and_then(accounts: Accounts, every: float = 300.0) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await accounts.tidy()
        except Exception as exc:
            log.warning("could not tidy sessions", extra={"error": repr(exc)})


def create_app(settings: ConsoleSettings | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()
    engine = create_engine(settings, "console")
    accounts = Accounts(ConsoleStore(engine), settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = httpx.AsyncClient(timeout=settings.console_upstream_timeout_seconds)
        app.state.upstream = Upstream(
            settings.service_urls, settings.jwt_secret, client, TokenPolicy.of(settings)
        )
        if settings.console_admin_password:
            await accounts.ensure_first_admin(settings.console_admin_password)
        elif await accounts.store.count_staff() == 0:
            log.warning(
                "no staff account yet: set OMS_CONSOLE_ADMIN_PASSWORD or run "
                "`oms-console create-user NAME --role admin`"
            )
        tidy = asyncio.create_task(_tidy_now_and_then(accounts))
        try:
            yield
        finally:
            tidy.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tidy
            await app.state.feed.close()
            await client.aclose()
            await engine.dispose()

    app = FastAPI(
        title="OMS console",
        description="The staff console",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.accounts = accounts
    app.state.feed = EventFeed(settings.amqp_url)
    app.state.capacity_history = CapacityHistory()
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestContextMiddleware, access_log=settings.access_log)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False, response_model=None)
    async def readyz() -> Response:
        try:
            async with asyncio.timeout(2.0), engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return Response(
                '{"status": "not ready", "checks": {"database": false}}',
                status_code=503,
                media_type="application/json",
            )
        return Response(
            '{"status": "ready", "checks": {"database": true}}', media_type="application/json"
        )

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/"
        return RedirectResponse(f"/sign-in?next={quote(target, safe='/')}", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> HTMLResponse:
        log.warning("forbidden", extra={"path": request.url.path, "reason": exc.reason})
        return await page(request, "forbidden.html", 403, reason=exc.reason)

    @app.exception_handler(UpstreamError)
    async def upstream_failed(request: Request, exc: UpstreamError) -> HTMLResponse:
        return await page(request, "upstream_error.html", 502, error=exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return await page(request, "not_found.html", 404, what=request.url.path)
        return await page(
            request, "error.html", exc.status_code, title=str(exc.detail), status=exc.status_code
        )

    @app.exception_handler(422)
    async def bad_input(request: Request, exc: Exception) -> Response:
        errors: list[dict[str, Any]] = getattr(exc, "errors", list)()
        fields = ", ".join(".".join(str(p) for p in e.get("loc", [])[1:]) for e in errors)
        return await page(
            request,
            "error.html",
            400,
            title=f"Some input was not understood ({fields or 'the request'}).",
            status=400,
        )

    app.include_router(auth_routes.router)
    app.include_router(orders.router)
    app.include_router(warehouse.router)
    app.include_router(operations.router)
    return app
