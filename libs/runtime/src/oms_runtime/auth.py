"""Bearer JWT auth (HS256): who is calling, and are they allowed to."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Annotated, Literal

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from oms_runtime.problems import Problem
from oms_runtime.settings import ServiceSettings

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


@dataclass(frozen=True)
class TokenPolicy:
    """What a token must satisfy besides its signature (from the service settings)."""

    max_lifetime_seconds: int = 24 * 3600
    issuer: str | None = None
    audience: str | None = None

    @classmethod
    def of(cls, settings: ServiceSettings) -> TokenPolicy:
        return cls(settings.jwt_max_lifetime_seconds, settings.jwt_issuer, settings.jwt_audience)


def mint_token(
    secret: str,
    subject: str,
    role: Role,
    ttl_seconds: int = 3600,
    *,
    issuer: str | None = None,
    audience: str | None = None,
    actor: str | None = None,
) -> str:
    now = int(time.time())
    claims: dict[str, object] = {"sub": subject, "role": role, "iat": now, "exp": now + ttl_seconds}
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    if actor is not None:
        claims["act"] = {"sub": actor}
    return jwt.encode(claims, secret, algorithm="HS256")


def _unauthorized(detail: str) -> Problem:
    problem = Problem(401, "unauthorized", "Authentication required", detail)
    problem.headers["WWW-Authenticate"] = 'Bearer realm="oms"'
    return problem


def _expired() -> Problem:
    return _unauthorized("The token has expired")


def decode_token(secret: str, token: str, policy: TokenPolicy = TokenPolicy()) -> Principal:
    principal, expires_at = _verified(secret, token, policy)
    # A token verified earlier is served from the cache, so its expiry, the one
    # check that changes with time, is made again here (as PyJWT makes it: expired
    # from `exp` on). A token not yet valid (`nbf`, `iat` ahead) was never cached.
    if time.time() >= expires_at:
        raise _expired()
    return principal


# Clients send the same token for its lifetime, and checking its signature and
# claims each time was most of the cost of authenticating a request. Only tokens
# that passed every check are cached (an exception is not), keyed by the secret and
# policy too, so a token signed with another secret is never served from here.
@functools.lru_cache(maxsize=4096)
def _verified(secret: str, token: str, policy: TokenPolicy) -> tuple[Principal, int]:
    """The token's principal and its `exp`, or a 401 problem."""
    required = ["sub", "exp", "iat"]
    required += ["iss"] if policy.issuer is not None else []
    required += ["aud"] if policy.audience is not None else []
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer=policy.issuer,
            audience=policy.audience,
            options={"require": required},
        )
    except jwt.ExpiredSignatureError as exc:
        raise _expired() from exc
    except jwt.MissingRequiredClaimError as exc:
        raise _unauthorized(f"The token must carry the `{exc.claim}` claim") from exc
    except jwt.InvalidIssuerError as exc:
        raise _unauthorized("The token is not from the expected issuer (`iss`)") from exc
    except jwt.InvalidAudienceError as exc:
        raise _unauthorized("The token is not meant for this audience (`aud`)") from exc
    except jwt.InvalidTokenError as exc:
        raise _unauthorized("The token is not valid") from exc
    lifetime = claims["exp"] - claims["iat"]
    if lifetime > policy.max_lifetime_seconds:
        # A stolen long-lived token would stay useful for too long.
        raise _unauthorized(
            f"The token's lifetime (exp - iat = {lifetime} s) exceeds the "
            f"{policy.max_lifetime_seconds} s this service accepts"
        )
    role = claims.get("role")
    subject = claims.get("sub")
    if role not in ROLES or not isinstance(subject, str) or not subject:
        raise _unauthorized("The token must carry a `sub` and a `role` of customer or admin")
    act = claims.get("act")
    actor = act.get("sub") if isinstance(act, dict) else None
    if actor is not None and (not isinstance(actor, str) or not actor):
        raise _unauthorized("The `act` claim must carry the actor's `sub`")
    return Principal(subject=subject, role=role, actor=actor), int(claims["exp"])


# Declares the bearer scheme in the OpenAPI documents (so "Try it out" can send a
# token); refusing is ours, as a problem document.
_bearer = HTTPBearer(auto_error=False, bearerFormat="JWT", description="`oms-token` mints one")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials.strip():
        raise _unauthorized("Send `Authorization: Bearer <token>`")
    settings = request.app.state.settings
    return decode_token(
        settings.jwt_secret, credentials.credentials.strip(), TokenPolicy.of(settings)
    )


async def admin_principal(
    principal: Annotated[Principal, Depends(current_principal)],
) -> Principal:
    if not principal.is_admin:
        raise Problem(403, "forbidden", "Admin role required")
    return principal


Authenticated = Annotated[Principal, Depends(current_principal)]
Admin = Annotated[Principal, Depends(admin_principal)]
