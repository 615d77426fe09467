"""What the page modules share: dependencies, the action helper, input parsing."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse

from oms_console.db.store import ConsoleStore
from oms_console.upstream import Upstream, UpstreamError
from oms_console.web.auth_routes import safe_next
from oms_console.web.security import Staff

log = logging.getLogger("oms.console.actions")

UUID_PATTERN = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
SKU_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


async def optional(call: Awaitable[Any]) -> tuple[Any, str | None]:
    """A part of a page that may be missing (a service down): (value, error)."""
    try:
        return await call, None
    except UpstreamError as exc:
        return None, exc.message


def upstream_of(request: Request) -> Upstream:
    upstream: Upstream = request.app.state.upstream
    return upstream


UpstreamDep = Annotated[Upstream, Depends(upstream_of)]


def is_uuid(text: str) -> bool:
    return bool(UUID_PATTERN.fullmatch(text))


def canonical_uuid(text: str) -> str:
    return str(uuid.UUID(text))


async def act(
    request: Request,
    staff: Staff,
    *,
    action: str,
    target: str,
    call: Callable[[], Awaitable[Any]],
    done: str,
    back_to: str,
    detail: dict[str, Any] | None = None,
    explain: Callable[[UpstreamError], str | None] | None = None,
) -> RedirectResponse:
    """Carry out one staff action through a service, record it in the audit log
    (whatever the outcome) and come back to `back_to` with the outcome shown.
    `explain` may put a refusal in the staff's terms (None: as the service said)."""
    store: ConsoleStore = request.app.state.accounts.store
    try:
        await call()
    except UpstreamError as exc:
        await store.audit(
            staff.name,
            action,
            target,
            "refused" if exc.status and exc.status < 500 else "failed",
            {**(detail or {}), "service": exc.service, "status": exc.status, "error": exc.message},
        )
        shown = (explain(exc) if explain else None) or exc.message
        await store.set_flash(staff.session.token_hash, "error", shown)
        log.info(
            "staff action refused",
            extra={"staff": staff.name, "action": action, "target": target, "error": exc.message},
        )
    else:
        await store.audit(staff.name, action, target, "done", detail)
        await store.set_flash(staff.session.token_hash, "ok", done)
        log.info("staff action", extra={"staff": staff.name, "action": action, "target": target})
    return RedirectResponse(safe_next(back_to), status_code=303)


async def flash_error(request: Request, staff: Staff, text: str, back_to: str) -> RedirectResponse:
    await request.app.state.accounts.store.set_flash(staff.session.token_hash, "error", text)
    return RedirectResponse(safe_next(back_to), status_code=303)
