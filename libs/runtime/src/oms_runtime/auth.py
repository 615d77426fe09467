"""Bearer JWT auth (HS256): who is calling, and are they allowed to."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Literal

import jwt
from fastapi import Depends, Request

from oms_runtime.problems import Problem

Role = Literal["customer", "admin"]
ROLES: tuple[Role, ...] = ("customer", "admin")


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role
    # The person a service principal acts for (RFC 8693 `act` claim), e.g. the staff
    # member signed in to the console (subject `console`).
    actor: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def name(self) -> str:
        """Who to record as having done something: "alice (console)" for an actor."""
        return f"{self.actor} ({self.subject})" if self.actor else self.subject


def mint_token(
    secret: str, subject: str, role: Role, ttl_seconds: int = 3600, actor: str | None = None
) -> str:
    now = int(time.time())
    claims: dict[str, object] = {"sub": subject, "role": role, "iat": now, "exp": now + ttl_seconds}
    if actor is not None:
        claims["act"] = {"sub": actor}
    return jwt.encode(claims, secret, algorithm="HS256")


def _unauthorized(detail: str) -> Problem:
    problem = Problem(401, "unauthorized", "Authentication required", detail)
    problem.headers["WWW-Authenticate"] = 'Bearer realm="oms"'
    return problem


def decode_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("The token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise _unauthorized("The token is not valid") from exc
    role = claims.get("role")
    subject = claims.get("sub")
    if role not in ROLES or not isinstance(subject, str) or not subject:
        raise _unauthorized("The token must carry a `sub` and a `role` of customer or admin")
    act = claims.get("act")
    actor = act.get("sub") if isinstance(act, dict) else None
    if actor is not None and (not isinstance(actor, str) or not actor):
        raise _unauthorized("The `act` claim must carry the actor's `sub`")
    return Principal(subject=subject, role=role, actor=actor)


async def current_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("Send `Authorization: Bearer <token>`")
    return decode_token(request.app.state.settings.jwt_secret, token.strip())


async def admin_principal(
    principal: Annotated[Principal, Depends(current_principal)],
) -> Principal:
    if not principal.is_admin:
        raise Problem(403, "forbidden", "Admin role required")
    return principal


Authenticated = Annotated[Principal, Depends(current_principal)]
Admin = Annotated[Principal, Depends(admin_principal)]
