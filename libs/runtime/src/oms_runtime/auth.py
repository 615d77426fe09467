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

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def mint_token(secret: str, subject: str, role: Role, ttl_seconds: int = 3600) -> str:
    now = int(time.time())
    claims = {"sub": subject, "role": role, "iat": now, "exp": now + ttl_seconds}
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
    return Principal(subject=subject, role=role)


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
