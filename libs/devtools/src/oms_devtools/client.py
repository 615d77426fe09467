"""A small HTTP client for the running system, used by e2e tests and the benchmark."""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from standardwebhooks import Webhook

from oms_runtime.auth import mint_token

T = TypeVar("T")

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Main St",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}


def order_body(items: Iterable[tuple[str, int]], token: str = "tok_ok") -> dict[str, Any]:
    """What a checkout sends: these (sku, quantity) lines, to ADDRESS, paid with `token`."""
    return {
        "items": [{"sku": sku, "quantity": quantity} for sku, quantity in items],
        "shipping_address": ADDRESS,
        "payment": {"token": token},
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
        self,
        on_hand: int | None = None,
        unit_price: int = 1000,
        currency: str = "EUR",
        **extra: Any,
    ) -> dict[str, Any]:
        """A product with a fresh SKU: `on_hand` at the `default` location, or
        `stock={"BER": 25, ...}` (on hand per location)."""
        sku = extra.pop("sku", f"SKU-{uuid.uuid4().hex[:10]}")
        stock: dict[str, int] | None = extra.pop("stock", None)
        initial: dict[str, Any] = (
            {"stock": [{"location": code, "on_hand": n} for code, n in stock.items()]}
            if stock is not None
            else {"on_hand": on_hand}
        )
        response = await self.http.post(
            f"{self.urls['inventory']}/products",
            headers=self.admin(),
            json={
                "sku": sku,
                "name": f"Product {sku}",
                "unit_price": unit_price,
                "currency": currency,
                **initial,
                **extra,
            },
        )
        response.raise_for_status()
        return dict(response.json())

    async def create_location(
        self,
        code: str | None = None,
        country: str = "DE",
        priority: int | None = None,
        serves: list[str] | None = None,
    ) -> dict[str, Any]:
        """A stock location (a fresh code unless one is given)."""
        code = code or f"LOC-{uuid.uuid4().hex[:8]}"
        body: dict[str, Any] = {"code": code, "name": f"Location {code}", "country": country}
        if priority is not None:
            body["priority"] = priority
        if serves is not None:
            body["serves"] = serves
        response = await self.http.post(
            f"{self.urls['inventory']}/locations", headers=self.admin(), json=body
        )
        response.raise_for_status()
        return dict(response.json())

    async def stock_at(self, sku: str) -> dict[str, dict[str, Any]]:
        """The product's stock per location: {location: {on_hand, reserved, ...}}."""
        return {level["location"]: level for level in (await self.product(sku))["locations"]}

    async def product(self, sku: str) -> dict[str, Any]:
        response = await self.http.get(
            f"{self.urls['inventory']}/products/{sku}", headers=self.admin()
        )
        response.raise_for_status()
        return dict(response.json())

    async def movements(self, sku: str, location: str | None = None) -> list[dict[str, Any]]:
        """The product's stock ledger (at `location`, or everywhere), oldest first: its
        first 500 movements."""
        params: dict[str, str | int] = {"limit": 500}
        if location is not None:
            params["location"] = location
        response = await self.http.get(
            f"{self.urls['inventory']}/products/{sku}/movements",
            params=params,
            headers=self.admin(),
        )
        response.raise_for_status()
        return list(response.json()["items"])

    # -- orders ---------------------------------------------------------------

    async def post_order(
        self,
        body: dict[str, Any],
        customer: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST /orders as `customer` (this client's own by default): the answer as it is."""
        return await self.http.post(
            f"{self.urls['order']}/orders",
            headers={**self.as_customer(customer), **(headers or {})},
            json=body,
        )

    async def place_order(
        self, items: Iterable[tuple[str, int]], token: str = "tok_ok", customer: str | None = None
    ) -> httpx.Response:
        """Place an order; the answer as it is, for tests about the answer itself."""
        return await self.post_order(order_body(items, token), customer)

    async def place(
        self,
        items: Iterable[tuple[str, int]],
        token: str = "tok_ok",
        customer: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Place an order that must be accepted; returns it. Anything but 202 (a 429, a
        422) fails here, with the answer, instead of as a KeyError further on."""
        response = await self.post_order(order_body(items, token), customer, headers)
        if response.status_code != 202:
            raise AssertionError(f"order refused: {response.status_code} {response.text}")
        return dict(response.json())

    async def cancel(
        self, order_id: str, customer: str | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """POST /orders/{id}/cancel as `customer` (this client's own by default)."""
        return await self.http.post(
            f"{self.urls['order']}/orders/{order_id}/cancel",
            headers={**self.as_customer(customer), **(headers or {})},
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

    async def wait_for_payment(
        self, order_id: str, *statuses: str, timeout: float = 20.0
    ) -> dict[str, Any]:
        return await eventually(
            lambda: self.payment_of(order_id),
            lambda payment: payment["status"] in statuses,
            timeout,
            f"the payment of order {order_id} to become {'/'.join(statuses)}",
        )

    async def gateway_holds(self, payment_id: str) -> list[dict[str, Any]]:
        """What the card gateway itself says it holds, or held, for our payment."""
        response = await self.http.get(
            f"{self.urls['gateway']}/v1/authorizations", params={"reference": payment_id}
        )
        response.raise_for_status()
        return list(response.json()["items"])

    async def payment_refunds(self, payment_id: str) -> list[dict[str, Any]]:
        """A payment's refunds, oldest first (each with its `return_id`, if any)."""
        response = await self.http.get(
            f"{self.urls['payment']}/payments/{payment_id}/refunds", headers=self.admin()
        )
        response.raise_for_status()
        return list(response.json())

    async def gateway_calls(
        self, payment_id: str, operation: str | None = None
    ) -> list[dict[str, Any]]:
        """The payment service's audit log of its calls to the gateway for a payment
        (only those of `operation`, e.g. "refund", if given), oldest first."""
        response = await self.http.get(
            f"{self.urls['payment']}/payments/{payment_id}/gateway-calls", headers=self.admin()
        )
        response.raise_for_status()
        calls = list(response.json())
        return [c for c in calls if operation is None or c["operation"] == operation]

    async def configure_gateway(self, **settings: Any) -> dict[str, Any]:
        """Change the gateway simulator's faults (`latency_ms`, `failure_rate`,
        `timeout_rate`, `timeout_delay_seconds`) or whether it refuses the refunds of
        `tok_refund_refused` (`refund_refused_token_active`); returns its whole
        configuration."""
        response = await self.http.post(f"{self.urls['gateway']}/v1/_config", json=settings)
        response.raise_for_status()
        return dict(response.json())

    async def shipment_of(self, order_id: str) -> dict[str, Any] | None:
        response = await self.http.get(
            f"{self.urls['shipping']}/shipments",
            params={"order_id": order_id},
            headers=self.admin(),
        )
        response.raise_for_status()
        items = response.json()["items"]
        return dict(items[0]) if items else None

    async def _every_page(self, url: str, filters: dict[str, str]) -> list[dict[str, Any]]:
        """The items of every page of an admin listing (cursor pages)."""
        found: list[dict[str, Any]] = []
        params: dict[str, str] = {**filters, "limit": "200"}
        while True:
            response = await self.http.get(url, params=params, headers=self.admin())
            response.raise_for_status()
            page = response.json()
            found += page["items"]
            if page["next_cursor"] is None:
                return found
            params["cursor"] = page["next_cursor"]

    async def shipments(self, **filters: str) -> list[dict[str, Any]]:
        """The shipments (one per parcel) matching `filters` (`order_id`, `status`,
        `location`), every page of them."""
        return await self._every_page(f"{self.urls['shipping']}/shipments", filters)

    async def shipment(self, shipment_id: str) -> dict[str, Any]:
        """One dispatch note."""
        response = await self.http.get(
            f"{self.urls['shipping']}/shipments/{shipment_id}", headers=self.admin()
        )
        response.raise_for_status()
        return dict(response.json())

    async def dispatch(self, shipment_id: str) -> httpx.Response:
        return await self.http.post(
            f"{self.urls['shipping']}/shipments/{shipment_id}/dispatch", headers=self.admin()
        )

    def sign(
        self, body: bytes, webhook_id: str | None = None, timestamp: datetime | None = None
    ) -> dict[str, str]:
        """Standard Webhooks headers for a carrier delivery of `body`."""
        webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
        timestamp = timestamp or datetime.now(UTC)
        secret = self.carrier_secret
        signer = Webhook(secret if secret.startswith("whsec_") else secret.encode())
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": signer.sign(webhook_id, timestamp, body.decode()),
        }

    async def tracking_event(
        self,
        shipment_id: str,
        status: str,
        occurred_at: str,
        location: str | None = "Berlin hub",
        *,
        tracking_number: str | None = None,
        headers: Mapping[str, str | bytes] | None = None,
    ) -> httpx.Response:
        """Post a carrier event, signed as the carrier would unless `headers` (the
        signature headers to send instead) are given. The tracking number is the
        shipment's own unless another is named."""
        if tracking_number is None:
            shipment = await self.http.get(
                f"{self.urls['shipping']}/shipments/{shipment_id}", headers=self.admin()
            )
            tracking_number = (
                shipment.json().get("tracking_number") if shipment.status_code == 200 else None
            ) or "SIM-UNKNOWN"
        body = httpx.Request(
            "POST",
            "http://x",
            json={
                "tracking_number": tracking_number,
                "status": status,
                "location": location,
                "occurred_at": occurred_at,
            },
        ).content
        return await self.post_tracking_body(shipment_id, body, headers)

    async def post_tracking_body(
        self, shipment_id: str, body: bytes, headers: Mapping[str, str | bytes] | None = None
    ) -> httpx.Response:
        """Post raw carrier event bytes, signed unless signature `headers` are given
        (as bytes, they may be anything a client can send, non-ASCII included)."""
        signature = headers if headers is not None else self.sign(body)
        raw = {
            name.encode(): value if isinstance(value, bytes) else value.encode()
            for name, value in {"content-type": "application/json", **signature}.items()
        }
        return await self.http.post(
            f"{self.urls['shipping']}/shipments/{shipment_id}/tracking-events",
            content=body,
            headers=raw,
        )

    # -- shipping: return parcels -------------------------------------------------

    async def shipping_return(self, return_id: str) -> dict[str, Any]:
        """One return parcel as the warehouse sees it (`GET /returns/{id}` on shipping)."""
        response = await self.http.get(
            f"{self.urls['shipping']}/returns/{return_id}", headers=self.admin()
        )
        response.raise_for_status()
        return dict(response.json())

    async def shipping_returns(self, **filters: str) -> list[dict[str, Any]]:
        """The return parcels matching `filters` (`status`, `order_id`, `location`),
        every page of them."""
        return await self._every_page(f"{self.urls['shipping']}/returns", filters)

    async def receive_return(
        self, return_id: str, items: Iterable[tuple[str, int, str]]
    ) -> httpx.Response:
        """The warehouse books in a returned parcel: (sku, quantity, condition) lines,
        the condition `resellable` or `damaged`."""
        return await self.post_receipt(
            return_id,
            {
                "items": [
                    {"sku": sku, "quantity": quantity, "condition": condition}
                    for sku, quantity, condition in items
                ]
            },
        )

    async def post_receipt(self, return_id: str, body: Any) -> httpx.Response:
        """Post any receipt body (also an invalid one) for a return parcel."""
        return await self.http.post(
            f"{self.urls['shipping']}/returns/{return_id}/receive",
            json=body,
            headers=self.admin(),
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
