"""The card gateway over HTTP (the simulator in development and tests)."""

from __future__ import annotations

import ssl
import time
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from oms_payment.gateway.base import (
    Approved,
    CallRecord,
    Declined,
    GatewayResult,
    Unavailable,
)
from oms_payment.gateway.circuit import CircuitBreaker
from oms_runtime import tracing

# What a call that got no answer raises: httpx's errors, and the few of aiohttp's
# that its transport passes on unmapped (a malformed response, a bare timeout).
NO_ANSWER = (httpx.HTTPError, aiohttp.ClientError, TimeoutError)


class HttpPaymentGateway:
    def __init__(
        self,
        base_url: str,
        timeout_seconds: float,
        breaker: CircuitBreaker | None = None,
        max_connections: int = 32,
        ca_file: str | None = None,
        keepalive_seconds: float = 2.0,
    ) -> None:
        self.breaker = breaker or CircuitBreaker()
        # One pooled client for the process: no connection set-up per call.
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_seconds),
            # httpx's API over aiohttp's C-accelerated HTTP/1.1: a gateway call costs
            # about a third of the client CPU it does over httpcore (README, Benchmarks).
            transport=AiohttpTransport(
                # The gateway's certificate is checked against the given CA bundle
                # (a private CA), else the system's.
                verify=ssl.create_default_context(cafile=ca_file) if ca_file else True,
                # An idle connection is dropped before the gateway would close it
                # (see `gateway_keepalive_seconds`).
                limits=httpx.Limits(
                    max_connections=max_connections,
                    max_keepalive_connections=8,
                    keepalive_expiry=keepalive_seconds,
                ),
            ),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def authorize(
        self, *, idempotency_key: str, amount: int, currency: str, token: str, reference: str
    ) -> tuple[GatewayResult, CallRecord]:
        body = {"amount": amount, "currency": currency, "token": token, "reference": reference}
        record, response = await self._post(
            "authorize", "/v1/authorizations", idempotency_key, body
        )
        if response is None or response.status_code >= 500:
            return Unavailable(_error_text(record), _answered(response)), record
        payload = record.response or {}
        if response.status_code in (200, 201):
            return Approved(payload["id"], payload["amount"]), record
        return Declined(payload.get("decline_code") or payload.get("error") or "declined"), record

    async def capture(
        self, *, idempotency_key: str, gateway_id: str, amount: int, final: bool = True
    ) -> tuple[GatewayResult, CallRecord]:
        # `final` is the gateway's default: a single capture's request stays what it
        # was before parcels, so one queued before an upgrade and retried afterwards
        # is the same request under its key (the gateway replays, not 409).
        body: dict[str, Any] = {"amount": amount} if final else {"amount": amount, "final": False}
        record, response = await self._post(
            "capture", f"/v1/authorizations/{gateway_id}/capture", idempotency_key, body
        )
        return self._outcome(record, response, amount), record

    async def void(
        self, *, idempotency_key: str, gateway_id: str
    ) -> tuple[GatewayResult, CallRecord]:
        record, response = await self._post(
            "void", f"/v1/authorizations/{gateway_id}/void", idempotency_key, {}
        )
        return self._outcome(record, response, 0), record

    async def refund(
        self, *, idempotency_key: str, gateway_id: str, amount: int
    ) -> tuple[GatewayResult, CallRecord]:
        record, response = await self._post(
            "refund",
            f"/v1/authorizations/{gateway_id}/refunds",
            idempotency_key,
            {"amount": amount},
        )
        return self._outcome(record, response, amount), record

    async def holds_for(self, reference: str) -> tuple[list[str] | None, CallRecord]:
        record = CallRecord("lookup", "", {"path": "/v1/authorizations", "reference": reference})
        started = time.perf_counter()
        try:
            response = _released(
                await self._client.get("/v1/authorizations", params={"reference": reference})
            )
            record.status_code = response.status_code
            record.response = response.json()
        except (*NO_ANSWER, ValueError) as exc:
            record.error = f"{type(exc).__name__}: {exc}".strip()
            return None, record
        finally:
            record.latency_ms = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            return None, record
        items = (record.response or {}).get("items", [])
        return [item["id"] for item in items if item.get("status") == "authorized"], record

    @staticmethod
    def _outcome(record: CallRecord, response: httpx.Response | None, amount: int) -> GatewayResult:
        if response is None or response.status_code >= 500:
            return Unavailable(_error_text(record), _answered(response))
        if response.status_code < 300:
            return Approved((record.response or {}).get("id", ""), amount)
        return Declined((record.response or {}).get("error") or f"HTTP {response.status_code}")

    async def _post(
        self, operation: str, path: str, idempotency_key: str, body: dict[str, Any]
    ) -> tuple[CallRecord, httpx.Response | None]:
        record = CallRecord(operation, idempotency_key, {"path": path, **body})
        if not self.breaker.allow():
            record.error = "circuit open: the gateway failed repeatedly, not calling it"
            return record, None
        started = time.perf_counter()
        try:
            response = _released(
                await self._client.post(
                    path,
                    json=body,
                    headers={
                        "Idempotency-Key": idempotency_key,
                        "traceparent": tracing.outgoing_traceparent(),
                    },
                )
            )
        except NO_ANSWER as exc:
            record.error = f"{type(exc).__name__}: {exc}".strip()
            record.latency_ms = (time.perf_counter() - started) * 1000
            self.breaker.failed()
            return record, None
        record.latency_ms = (time.perf_counter() - started) * 1000
        record.status_code = response.status_code
        if response.status_code >= 500:
            self.breaker.failed()
        else:
            self.breaker.succeeded()
        try:
            record.response = response.json()
        except ValueError:
            record.response = {"raw": response.text[:500]}
        return record, response


def _released(response: httpx.Response) -> httpx.Response:
    """The response (read and closed by then) without httpx's reference cycle between
    it and its stream (encode/httpx#3733): left in place, every call's objects, the
    transport's included, wait for the cyclic garbage collector."""
    response.stream = httpx.ByteStream(response.content)
    return response


def _answered(response: httpx.Response | None) -> bool:
    """A server error the gateway chose to answer with, as opposed to none at all or
    "busy, try later" (503, 504)."""
    return response is not None and response.status_code not in (503, 504)


def _error_text(record: CallRecord) -> str:
    if record.error:
        return record.error
    reason = (record.response or {}).get("error")
    return f"HTTP {record.status_code}" + (f" {reason}" if reason else "")
