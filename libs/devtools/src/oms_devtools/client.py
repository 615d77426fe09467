"""A small HTTP client for the running system, used by e2e tests and the benchmark."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import httpx

from oms_runtime.auth import mint_token

T = TypeVar("T")

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Main St",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}


class OmsClient:
    def __init__(
        self,
        urls: dict[str, str],
        jwt_secret: str,
        carrier_secret: str,
        customer: str = "alice",
        verify: ssl.SSLContext | bool = True,  # e.g. trusting a private CA
    ) -> None:
        self.urls = urls
        self.admin_token = mint_token(jwt_secret, "ops", "admin")
        self.customer = customer
        self.jwt_secret = jwt_secret
        self.carrier_secret = carrier_secret
        self.http = httpx.AsyncClient(timeout=10.0, verify=verify)

    async def aclose(self) -> None:
        await self.http.aclose()

    def token(self, customer: str | None = None) -> str:
        return mint_token(self.jwt_secret, customer or self.customer, "customer")

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def as_customer(self, customer: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(customer)}"}

    # -- inventory ----------------------------------------------------------

    async def create_product(
        self, on_hand: int, unit_price: int = 1000, currency: str = "EUR", **extra: Any
    ) -> dict[str, Any]:
        sku = extra.pop("sku", f"SKU-{uuid.uuid4().hex[:10]}")
        response = await self.http.post(
            f"{self.urls['inventory']}/products",
            headers=self.admin(),
            json={
                "sku": sku,
                "name": f"Product {sku}",
                "unit_price": unit_price,
                "currency": currency,
                "on_hand": on_hand,
                **extra,
            },
        )
        response.raise_for_status()
        return dict(response.json())

    async def product(self, sku: str) -> dict[str, Any]:
        response = await self.http.get(
            f"{self.urls['inventory']}/products/{sku}", headers=self.admin()
        )
        response.raise_for_status()
        return dict(response.json())

    # -- orders ---------------------------------------------------------------

    async def place_order(
        self, items: Iterable[tuple[str, int]], token: str = "tok_ok", customer: str | None = None
    ) -> httpx.Response:
        return await self.http.post(
            f"{self.urls['order']}/orders",
            headers=self.as_customer(customer),
            json={
                "items": [{"sku": sku, "quantity": qty} for sku, qty in items],
                "shipping_address": ADDRESS,
                "payment": {"token": token},
            },
        )

    async def order(self, order_id: str) -> dict[str, Any]:
        response = await self.http.get(
            f"{self.urls['order']}/orders/{order_id}", headers=self.admin()
        )
        response.raise_for_status()
        return dict(response.json())

    async def history(self, order_id: str) -> list[dict[str, Any]]:
        response = await self.http.get(
            f"{self.urls['order']}/orders/{order_id}/history", headers=self.admin()
        )
        response.raise_for_status()
        return list(response.json()["entries"])

    async def wait_for_order(
        self, order_id: str, *statuses: str, timeout: float = 20.0
    ) -> dict[str, Any]:
        return await eventually(
            lambda: self.order(order_id),
            lambda order: order["status"] in statuses,
            timeout,
            f"order {order_id} to become {'/'.join(statuses)}",
        )

    # -- payment and shipping -------------------------------------------------

    async def payment_of(self, order_id: str) -> dict[str, Any] | None:
        response = await self.http.get(
            f"{self.urls['payment']}/payments", params={"order_id": order_id}, headers=self.admin()
        )
        response.raise_for_status()
        items = response.json()["items"]
        return dict(items[0]) if items else None

    async def shipment_of(self, order_id: str) -> dict[str, Any] | None:
        response = await self.http.get(
            f"{self.urls['shipping']}/shipments",
            params={"order_id": order_id},
            headers=self.admin(),
        )
        response.raise_for_status()
        items = response.json()["items"]
        return dict(items[0]) if items else None

    async def dispatch(self, shipment_id: str) -> httpx.Response:
        return await self.http.post(
            f"{self.urls['shipping']}/shipments/{shipment_id}/dispatch", headers=self.admin()
        )

    def sign(self, body: bytes) -> str:
        digest = hmac.new(self.carrier_secret.encode(), body, hashlib.sha256).hexdigest()
        return f"sha256={digest}"

    async def tracking_event(
        self,
        shipment_id: str,
        status: str,
        occurred_at: str,
        location: str | None = "Berlin hub",
        signature: str | None = None,
    ) -> httpx.Response:
        body = httpx.Request(
            "POST",
            "http://x",
            json={
                "status": status,
                "location": location,
                "occurred_at": occurred_at,
            },
        ).content
        return await self.http.post(
            f"{self.urls['shipping']}/shipments/{shipment_id}/tracking-events",
            content=body,
            headers={
                "content-type": "application/json",
                "X-Signature": signature if signature is not None else self.sign(body),
            },
        )


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    done: Callable[[T], bool],
    timeout: float,
    what: str,
) -> T:
    """Poll `probe` until `done(result)`; fail with the last result after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = await probe()
        if last is not None and done(last):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")
        await asyncio.sleep(0.05)
