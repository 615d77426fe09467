"""RFC 9457 problem details: every error a client sees has this shape."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_STATUS_TYPES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "too-many-requests",
    503: "service-unavailable",
}


def problem_type(slug: str) -> str:
    """A stable, documented identifier per kind of problem."""
    return f"/problems/{slug}"


class Problem(Exception):
    """Raised anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.extensions = extensions
        self.headers: dict[str, str] = {}


@dataclass(frozen=True)
class ProblemType:
    """How one kind of refusal answers over HTTP, whichever route it comes from."""

    status: int
    slug: str
    title: str
    # The input at fault, when one is.
    field: str | None = None


@dataclass(frozen=True)
class ErrorProblems:
    """A service's one mapping from the `code` of its errors (domain rules refusing,
    things not found) to problem types: routes raise, never translate by hand."""

    errors: tuple[type[Exception], ...]
    by_code: Mapping[str, ProblemType]

    def problem_for(self, error: Exception) -> ProblemType | None:
        return self.by_code.get(getattr(error, "code", ""))

    def unmapped(self) -> list[str]:
        """The error classes (the given ones and all below them) whose code has no
        problem type: each would answer 500."""
        missing: list[str] = []
        pending: list[type[Exception]] = list(self.errors)
        while pending:
            error = pending.pop()
            if getattr(error, "code", "") not in self.by_code:
                missing.append(error.__name__)
            pending.extend(error.__subclasses__())
        return sorted(missing)


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": problem_type(slug), "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'items', 0, 'quantity') -> 'items[0].quantity'."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or str(loc[0] if loc else "")


_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "Stable identifier of the kind of problem"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "field": {"type": "string", "description": "The input at fault, when one is"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "in": {"type": "string"},
                    "message": {"type": "string"},
                    "code": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}
_OUTAGES = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
)
_DOCUMENTED_ERRORS = {
    "400": "Malformed request",
    "401": "Missing, expired or forged credentials",
    "403": "Not allowed for this role",
    "404": "No such resource (or not yours)",
    "409": "Conflicts with the resource's state",
    "413": "Request body too large",
    "422": "Invalid input; `errors` names each field",
    "429": "Too many requests",
    "503": "A dependency (database, broker) is unreachable; retry later",
}


def document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what the API really answers on errors: problem
    documents, for every operation, instead of FastAPI's default 422 shape."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = _PROBLEM_SCHEMA
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status, description in _DOCUMENTED_ERRORS.items():
                    responses[status] = {"description": description, "content": problem}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_problems(app: FastAPI, problems: ErrorProblems) -> None:
    """Answer the service's errors with the problem type their code maps to; the
    error's message is the detail."""

    async def _refused(request: Request, exc: Exception) -> JSONResponse:
        kind = problems.problem_for(exc)
        if kind is None:
            log.exception("an error without a problem type", exc_info=exc)
            return problem_response(
                500, "internal-error", "Internal error", instance=request.url.path
            )
        extensions: dict[str, Any] = {"field": kind.field} if kind.field else {}
        # What the error adds for machines (e.g. the SKUs a refusal is about).
        extensions.update(getattr(exc, "extensions", None) or {})
        return problem_response(
            kind.status,
            kind.slug,
            kind.title,
            str(exc) or None,
            instance=request.url.path,
            **extensions,
        )

    for error in problems.errors:
        app.add_exception_handler(error, _refused)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.slug,
            exc.title,
            exc.detail,
            instance=request.url.path,
            headers=exc.headers or None,
            **exc.extensions,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": _field_path(error.get("loc", ())),
                "in": (error.get("loc") or ["body"])[0],
                "message": error.get("msg", "invalid"),
                "code": error.get("type", "invalid"),
            }
            for error in exc.errors()
        ]
        fields = ", ".join(sorted({error["field"] for error in errors}))
        return problem_response(
            422,
            "validation-error",
            "The request is not valid",
            f"Invalid fields: {fields}" if fields else None,
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = _STATUS_TYPES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(
            exc.status_code,
            slug,
            slug.replace("-", " ").capitalize(),
            detail,
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(DBAPIError)
    @app.exception_handler(asyncpg.PostgresError)
    @app.exception_handler(asyncpg.InterfaceError)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        # SQLAlchemy's errors wrap the driver's; statements sent to asyncpg
        # directly (the hot paths) raise the driver's own.
        if _caused_by(exc, (asyncpg.DataError,)):
            # A value Postgres cannot store (a NUL byte, a number out of range):
            # the input was bad, whatever the schema let through.
            field = _field_with_nul(request)
            return problem_response(
                422,
                "validation-error",
                "The request is not valid",
                f"{field} contains a NUL character"
                if field
                else "A value is out of range or contains characters that cannot be stored",
                instance=request.url.path,
                field=field or "request",
            )
        if not _is_outage(exc):
            return await _unexpected(request, exc)
        log.warning("database unreachable", extra={"error": repr(getattr(exc, "orig", exc))})
        return _unavailable(request, "The database cannot be reached")

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(request: Request, exc: PoolTimeout) -> JSONResponse:
        # Every pooled connection is stuck (e.g. on a database that stopped answering).
        log.warning("no database connection free in time", extra={"error": str(exc)})
        return _unavailable(request, "The database is not answering")

    @app.exception_handler(OSError)
    async def _network(request: Request, exc: OSError) -> JSONResponse:
        log.warning("dependency unreachable", extra={"error": repr(exc)})
        return _unavailable(request, "A dependency cannot be reached")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(500, "internal-error", "Internal error", instance=request.url.path)


def _field_with_nul(request: Request) -> str | None:
    """The path or query parameter that carried a NUL (bodies are checked by schema)."""
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        if "\x00" in str(value):
            return str(name)
    return None


def _is_outage(exc: Exception) -> bool:
    """A lost or refused connection, as opposed to a bug in a query."""
    return bool(getattr(exc, "connection_invalidated", False)) or _caused_by(exc, _OUTAGES)


def _caused_by(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, kinds):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _unavailable(request: Request, detail: str) -> JSONResponse:
    return problem_response(
        503,
        "service-unavailable",
        "Service unavailable",
        detail,
        instance=request.url.path,
        headers={"Retry-After": "5"},
    )
