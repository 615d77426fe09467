"""What every service's FastAPI app has: problem errors, ops routes, request logging."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oms_runtime import metrics, tracing
from oms_runtime.auth import Admin
from oms_runtime.deadletters import dead_letter_router
from oms_runtime.logging import log_context
from oms_runtime.problems import install_problem_handlers, problem_response
from oms_runtime.service import ServiceRuntime
from oms_runtime.settings import ServiceSettings

log = logging.getLogger("oms.http")

CORRELATION_HEADER = "x-correlation-id"


class RequestContextMiddleware:
    """Times and logs each request, and tags its log lines with a correlation id.

    Plain ASGI rather than BaseHTTPMiddleware: it sits on every request's hot path.
    """

    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        correlation_id = headers.get(CORRELATION_HEADER.encode(), b"").decode()[:128]
        request_id = correlation_id or uuid.uuid4().hex
        status = 500
        started = time.perf_counter()

        parent = tracing.parse_traceparent(headers.get(b"traceparent", b"").decode("latin-1"))

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"].append((b"x-request-id", request_id.encode()))
                message["headers"].append((b"traceparent", trace.traceparent.encode()))
            await send(message)

        with (
            tracing.span(f"{scope['method']} {scope['path']}", parent) as trace,
            log_context(request_id=request_id, correlation_id=correlation_id or None),
        ):
            try:
                await self.app(scope, receive, send_with_status)
            finally:
                elapsed = time.perf_counter() - started
                route = scope.get("route")
                path = getattr(route, "path", None) or "unmatched"
                metrics.HTTP_REQUEST_SECONDS.labels(scope["method"], path, str(status)).observe(
                    elapsed
                )
                if self.access_log and path not in ("/healthz", "/readyz", "/metrics"):
                    log.info(
                        "%s %s %s",
                        scope["method"],
                        scope["path"],
                        status,
                        extra={"status": status, "duration_ms": round(elapsed * 1000, 2)},
                    )


class SecurityHeaders:
    """`X-Content-Type-Options: nosniff` on every response, and `Cache-Control:
    no-store` on every answer to an authenticated request: those carry orders,
    addresses, payments, and no shared cache or browser history should keep them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authenticated = any(name == b"authorization" for name, _ in scope.get("headers") or [])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                names = {name.lower() for name, _ in headers}
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if authenticated and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# What a browser on an allowed origin may send and read (CORS).
_CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "Prefer",
    "X-Correlation-Id",
    "traceparent",
]
_CORS_RESPONSE_HEADERS = [
    "Idempotent-Replayed",
    "Preference-Applied",
    "Retry-After",
    "X-Request-Id",
    "traceparent",
]


def location_documented(
    what: str, follow_ups: dict[str, str] | None = None, *, parameter: str = "", field: str = "id"
) -> dict[str, Any]:
    """The OpenAPI entry of a response that names, in `Location`, the resource it
    made (RFC 9110: without it a 201 would name the URL that was posted to), and
    links it to the operations (`name: "METHOD /path"`) whose path `parameter` is the
    answer's `field`, so that clients, and the API fuzzer, can chain the calls."""
    entry: dict[str, Any] = {
        "headers": {"Location": {"description": what, "schema": {"type": "string"}}}
    }
    if follow_ups:
        if not parameter:
            raise ValueError("links need the path parameter they fill")
        entry["links"] = {}
        for name, operation in follow_ups.items():
            method, path = operation.split(" ", 1)
            entry["links"][name] = {
                "operationRef": f"#/paths/{_json_pointer_token(path)}/{method.lower()}",
                "parameters": {parameter: f"$response.body#/{field}"},
            }
    return entry


def _json_pointer_token(text: str) -> str:
    # RFC 6901: "~" and "/" are escaped inside a pointer's token.
    return text.replace("~", "~0").replace("/", "~1")


def add_edge_middleware(app: FastAPI, settings: ServiceSettings) -> None:
    """The outermost layers, so that every answer (413s and 429s included) gets them:
    CORS for the configured origins (none by default) and the security headers."""
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=_CORS_REQUEST_HEADERS,
            expose_headers=_CORS_RESPONSE_HEADERS,
            max_age=600,
        )
    app.add_middleware(SecurityHeaders)


def ops_router(runtime: ServiceRuntime) -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Database and broker are reachable", response_model=None)
    async def readyz() -> Any:
        checks = await runtime.readiness()
        if all(checks.values()):
            return {"status": "ready", "checks": checks}
        return problem_response(
            503, "service-unavailable", "Not ready", "A dependency is unreachable", checks=checks
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        await runtime.refresh_gauges()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @router.get(
        "/admin/capacity",
        summary="Capacity model of the service's queue: measured, predicted, observed",
    )
    async def capacity(
        _: Admin,
        target_utilisation: Annotated[float, Query(ge=0.01, le=1)] = 0.7,
        window_seconds: Annotated[
            float | None, Query(gt=0, le=3600, description="At most the tracked 60 s")
        ] = None,
    ) -> dict[str, Any]:
        report = await runtime.capacity_report(target_utilisation, window_seconds)
        return {"service": runtime.name, "queues": [report.as_dict()]}

    return router


def create_service_app(
    *,
    title: str,
    description: str,
    settings: ServiceSettings,
    runtime: ServiceRuntime,
    routers: Sequence[APIRouter],
    state: dict[str, Any] | None = None,
) -> FastAPI:
    """A service's FastAPI app; `state` lands on `app.state` for route dependencies."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    # Swagger UI and ReDoc from the installed fastapi-offline package: /docs works
    # without internet (no CDN, no web fonts).
    app = FastAPIOffline(title=title, description=description, version="1.0.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.runtime = runtime
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware, access_log=settings.access_log)
    app.include_router(ops_router(runtime))
    app.include_router(dead_letter_router(runtime))
    for router in routers:
        app.include_router(router)
    for key, value in (state or {}).items():
        setattr(app.state, key, value)
    return app


async def request_unit_of_work(request: Request) -> Any:
    """FastAPI dependency: a fresh unit of work from the service's factory."""
    return request.app.state.unit_of_work()
