"""Signing in and out."""

from __future__ import annotations

import math
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from oms_console.accounts import Accounts, SignedIn
from oms_console.web.render import NAVIGATION, page
from oms_console.web.security import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    Forbidden,
    Staff,
    secure_cookies,
    signed_in,
    tokens_match,
)

router = APIRouter()


def safe_next(target: str | None) -> str:
    """Only a path of this site (no scheme, no host): no open redirect."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def home_of(staff: Staff) -> str:
    for path, _, permission in NAVIGATION:
        if staff.may(permission):
            return path
    return "/sign-in"


@router.get("/", include_in_schema=False)
async def home(request: Request) -> Response:
    try:
        staff = await signed_in(request)
    except Exception:
        return RedirectResponse("/sign-in", status_code=303)
    return RedirectResponse(home_of(staff), status_code=303)


async def _sign_in_form(
    request: Request, *, next_path: str, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = await page(
        request,
        "sign_in.html",
        status_code=status_code,
        csrf_token=token,
        next_path=next_path,
        error=error,
        username=request.query_params.get("username", ""),
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        max_age=3600,
        path="/sign-in",
    )
    return response


@router.get("/sign-in", response_class=HTMLResponse, include_in_schema=False)
async def sign_in_form(request: Request, next: str | None = None) -> HTMLResponse:
    return await _sign_in_form(request, next_path=safe_next(next))


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/sign-in", include_in_schema=False)
async def sign_in(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    form = await request.form()
    if not tokens_match(request.cookies.get(SIGN_IN_COOKIE, ""), form.get(CSRF_FIELD)):
        raise Forbidden("The sign-in form expired or was not sent from this site. Try again.")
    accounts: Accounts = request.app.state.accounts
    outcome = await accounts.sign_in(username, password, client_address(request))
    if not isinstance(outcome, SignedIn):
        verdict = outcome.verdict
        if verdict.allowed:
            message, status = "Wrong username or password.", 401
        else:
            seconds = max(1, math.ceil(verdict.retry_after.total_seconds()))
            wait = f"{seconds} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"
            message = {
                "locked": f"Too many failed sign-ins: this account is locked for {wait}.",
                "address": f"Too many failed sign-ins from your address. Try again in {wait}.",
            }.get(verdict.reason, f"Too many failed sign-ins. Wait {wait} before trying again.")
            status = 429
        refused = await _sign_in_form(
            request, next_path=safe_next(next), error=message, status_code=status
        )
        if status == 429:
            refused.headers["Retry-After"] = str(
                max(1, math.ceil(verdict.retry_after.total_seconds()))
            )
        return refused
    staff = Staff(outcome.session)
    target = safe_next(next)
    response = RedirectResponse(home_of(staff) if target == "/" else target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        outcome.token,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path="/",
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    return response


@router.post("/sign-out", include_in_schema=False)
async def sign_out(request: Request) -> Response:
    await signed_in(request)  # a CSRF-checked POST: no one signs you out from elsewhere
    await request.app.state.accounts.sign_out(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
