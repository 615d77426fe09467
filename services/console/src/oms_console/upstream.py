"""The console's only way to the shop's data: the services' HTTP APIs.

It calls them as the service principal `console` (an admin token it mints with
OMS_JWT_SECRET, valid a minute) carrying the staff member's name in the RFC 8693
`act` claim, so the services record who acted ("alice (console)").
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from oms_runtime.auth import TokenPolicy, mint_token

log = logging.getLogger("oms.console.upstream")

SERVICES = ("order", "inventory", "payment", "shipping")
TOKEN_SECONDS = 60


class UpstreamError(Exception):
    """A service said no (4xx: `detail` says why), or could not be reached."""

    def __init__(
        self,
        service: str,
        status: int | None,
        title: str,
        detail: str = "",
        fields: tuple[tuple[str, str], ...] = (),
        problem_type: str = "",
    ) -> None:
        super().__init__(f"{service}: {title}: {detail}")
        self.service = service
        self.status = status
        self.title = title
        self.detail = detail
        # (field, message) of a validation problem, e.g. ("items[0].quantity", "...").
        self.fields = fields
        self.problem_type = problem_type

    @property
    def message(self) -> str:
        return f"{self.title}: {self.detail}" if self.detail else self.title


class Upstream:
    def __init__(
        self,
        urls: dict[str, str],
        jwt_secret: str,
        client: httpx.AsyncClient,
        policy: TokenPolicy = TokenPolicy(),
    ) -> None:
        self._urls = urls
        self._secret = jwt_secret
        self._client = client
        # The services check `iss` and `aud` when configured: the console's tokens
        # carry what they expect.
        self._policy = policy

    def token(self, actor: str) -> str:
        return mint_token(
            self._secret,
            "console",
            "admin",
            TOKEN_SECONDS,
            issuer=self._policy.issuer,
            audience=self._policy.audience,
            actor=actor,
        )

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        actor: str,
        *,
        params: Any = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        url = self._urls[service] + path
        try:
            response = await self._client.request(
                method,
                url,
                params=params,
                json=json,
                headers={"Authorization": f"Bearer {self.token(actor)}", **(headers or {})},
            )
        except httpx.HTTPError as exc:
            log.warning(
                "service unreachable", extra={"service": service, "path": path, "error": repr(exc)}
            )
            raise UpstreamError(service, None, f"The {service} service is unreachable") from exc
        if response.status_code >= 400:
            raise _error(service, response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def get(self, service: str, path: str, actor: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v not in (None, "", [])}
        return await self.call(service, "GET", path, actor, params=clean)

    async def post(
        self,
        service: str,
        path: str,
        actor: str,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        return await self.call(service, "POST", path, actor, json=json, headers=headers)

    async def get_or_none(self, service: str, path: str, actor: str, **params: Any) -> Any:
        """GET, with None for a 404 (e.g. an API this version of a service lacks)."""
        try:
            return await self.get(service, path, actor, **params)
        except UpstreamError as exc:
            if exc.status == 404:
                return None
            raise


def _error(service: str, response: httpx.Response) -> UpstreamError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code >= 500:
        log.warning("service failed", extra={"service": service, "status": response.status_code})
        return UpstreamError(
            service,
            response.status_code,
            f"The {service} service failed",
            str(body.get("title", "")),
        )
    detail = str(body.get("detail") or "")
    errors = body.get("errors")
    fields: tuple[tuple[str, str], ...] = ()
    if isinstance(errors, list) and errors:
        fields = tuple(
            (str(e.get("field", "?")), str(e.get("message", "")))
            for e in errors
            if isinstance(e, dict)
        )
        detail = "; ".join(f"{field}: {message}" for field, message in fields)
    elif body.get("field"):
        fields = ((str(body["field"]), detail),)
    return UpstreamError(
        service,
        response.status_code,
        str(body.get("title") or response.reason_phrase),
        detail,
        fields,
        str(body.get("type") or ""),
    )
