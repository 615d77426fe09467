"""Who is signed in, what they may do, and the CSRF check every POST goes through."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from oms_console.accounts import Accounts
from oms_console.db.store import Session
from oms_console.domain.roles import Permission, may

SESSION_COOKIE = "oms_console_session"
# Double-submit token of the sign-in form (there is no session yet to hold it).
SIGN_IN_COOKIE = "oms_console_sign_in"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SignInRequired(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Staff:
    """The signed-in staff member of a request."""

    session: Session

    @property
    def name(self) -> str:
        return self.session.staff.name

    @property
    def role(self) -> str:
        return self.session.staff.role.value

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token

    def may(self, permission: Permission | str) -> bool:
        return may(self.session.staff.role, Permission(permission))


def secure_cookies(request: Request) -> bool:
    return bool(request.app.state.settings.console_cookie_secure) or request.url.scheme == "https"


def tokens_match(expected: str, given: object) -> bool:
    return isinstance(given, str) and bool(given) and hmac.compare_digest(expected, given)


async def submitted_csrf_token(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def signed_in(request: Request) -> Staff:
    accounts: Accounts = request.app.state.accounts
    session = await accounts.session_for(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise SignInRequired()
    if request.method in UNSAFE_METHODS and not tokens_match(
        session.csrf_token, await submitted_csrf_token(request)
    ):
        raise Forbidden("The form's security token is missing or wrong. Reload the page.")
    staff = Staff(session)
    request.state.staff = staff
    return staff


def allowed(*permissions: Permission) -> Callable[[Request], Awaitable[Staff]]:
    """Dependency: a signed-in staff member holding every one of `permissions`; a
    POST must also carry the session's CSRF token."""

    async def dependency(request: Request) -> Staff:
        staff = await signed_in(request)
        missing = [p for p in permissions if not staff.may(p)]
        if missing:
            raise Forbidden(
                f"Your role ({staff.role}) may not " + ", ".join(p.value for p in missing) + "."
            )
        return staff

    return dependency


def describe(dependency: Any) -> str:
    return getattr(dependency, "__qualname__", repr(dependency))
