"""The load: orders of each kind placed over HTTP, open or closed loop, and what the
order events on `oms.events` say became of each (no polling)."""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aio_pika
import aiohttp
import orjson
from aio_pika.abc import AbstractIncomingMessage

from oms_devtools.client import ADDRESS

KINDS = ("ok", "declined", "out_of_stock")
FINAL_EVENTS = {
    "order.shipped": "shipped",
    "order.rejected": "rejected",
    "order.cancelled": "cancelled",
}
WATCHED_EVENTS = (*FINAL_EVENTS, "order.paid", "order.requires_attention")


@dataclass
class Placed:
    """One POST /orders: when it was due, how it went."""

    kind: str
    scheduled: float
    started: float = 0.0
    post_seconds: float | None = None
    status: int | None = None
    order_id: str | None = None
    error: str | None = None


@dataclass
class Outcome:
    """What the event stream said about one order (first delivery of each type)."""

    seen: dict[str, float] = field(default_factory=dict)
    final: str | None = None
    final_at: float | None = None
    reason: str | None = None


class EventListener:
    """Order events from `oms.events`, through a server-named exclusive queue."""

    def __init__(self, amqp_url: str) -> None:
        self._amqp_url = amqp_url
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self.outcomes: dict[str, Outcome] = {}
        self._waiters: dict[str, asyncio.Future[None]] = {}

    async def start(self) -> None:
        self._connection = await aio_pika.connect(self._amqp_url)
        channel = await self._connection.channel()
        exchange = await channel.declare_exchange(
            "oms.events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        for routing_key in WATCHED_EVENTS:
            await queue.bind(exchange, routing_key=routing_key)
        # No acks: the queue is ours and short-lived, and acking would cost the
        # load generator CPU it shares with the services.
        await queue.consume(self._on_message, no_ack=True)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        now = time.perf_counter()
        try:
            envelope = orjson.loads(message.body)
            kind = envelope["type"]
            data = envelope.get("data") or {}
            order_id = envelope.get("correlation_id") or data.get("order_id")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if not order_id:
            return
        outcome = self.outcomes.setdefault(order_id, Outcome())
        outcome.seen.setdefault(kind, now)
        if kind in FINAL_EVENTS and outcome.final is None:
            outcome.final = FINAL_EVENTS[kind]
            outcome.final_at = now
            outcome.reason = data.get("reason")
            waiter = self._waiters.pop(order_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def is_settled(self, order_id: str) -> bool:
        outcome = self.outcomes.get(order_id)
        return outcome is not None and outcome.final is not None

    async def wait_settled(self, order_id: str, timeout: float) -> bool:
        # The final event may have come in before the POST's answer did.
        if self.is_settled(order_id):
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[order_id] = waiter
        try:
            await asyncio.wait_for(waiter, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters.pop(order_id, None)


def parse_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, sep, weight = part.strip().partition("=")
        if not sep or name not in KINDS:
            raise argparse.ArgumentTypeError(
                f"--mix wants kind=weight pairs with kinds {', '.join(KINDS)}; got {part!r}"
            )
        try:
            mix[name] = float(weight)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a number: {weight!r}") from exc
        if mix[name] < 0:
            raise argparse.ArgumentTypeError(f"negative weight for {name}")
    if sum(mix.values()) <= 0:
        raise argparse.ArgumentTypeError("the weights of --mix add up to zero")
    return mix


class LoadGenerator:
    def __init__(
        self,
        order_url: str,
        tokens: Sequence[str],
        ok_skus: Sequence[str],
        empty_sku: str,
        mix: Mapping[str, float],
        listener: EventListener,
        seed: int,
        max_connections: int,
        request_timeout: float,
    ) -> None:
        self._url = f"{order_url}/orders"
        self._headers = [
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            for token in tokens
        ]
        self._ok_skus = list(ok_skus)
        self._empty_sku = empty_sku
        self._kinds = list(mix)
        self._weights = [mix[kind] for kind in self._kinds]
        self._listener = listener
        self._rng = random.Random(seed)
        self._request_timeout = request_timeout
        # Requests beyond the connection limit queue here, not in the client's pool,
        # so a backlog of thousands costs the load generator nothing per waiter.
        self._slots = asyncio.Semaphore(max_connections)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # aiohttp itself, not through httpx's API (as the payment service calls the
        # gateway): a POST then costs the load generator about half the CPU, CPU the
        # services sharing the machine would otherwise miss. Made in the running loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections,
                    # Shorter than the server's keep-alive (uvicorn: 5 s), so an idle
                    # connection is never reused just as the server closes it.
                    keepalive_timeout=2.0,
                ),
                timeout=aiohttp.ClientTimeout(total=self._request_timeout),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _post(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        async with self._client().post(self._url, data=body, headers=headers) as response:
            return response.status, await response.read()

    def _body(self, kind: str) -> bytes:
        rng = self._rng
        skus = rng.sample(self._ok_skus, rng.randint(1, 3))
        items = [{"sku": sku, "quantity": rng.randint(1, 2)} for sku in skus]
        if kind == "out_of_stock":
            # Next to an available line: reservation is all or nothing.
            items = [items[0], {"sku": self._empty_sku, "quantity": 1}]
        token = "tok_declined" if kind == "declined" else "tok_ok"
        return orjson.dumps(
            {"items": items, "shipping_address": ADDRESS, "payment": {"token": token}}
        )

    async def place(self, scheduled: float) -> Placed:
        kind = self._rng.choices(self._kinds, self._weights)[0]
        body = self._body(kind)
        headers = self._rng.choice(self._headers)
        placed = Placed(kind=kind, scheduled=scheduled, started=time.perf_counter())
        try:
            # A client gives up after the request timeout, also when the
            # request never left: that bounds the backlog of an overloaded run.
            async with asyncio.timeout(self._request_timeout - (placed.started - scheduled)):
                await self._slots.acquire()
        except TimeoutError:
            placed.error = "NotSent (all connections busy)"
            placed.post_seconds = time.perf_counter() - scheduled
            return placed
        try:
            status, answer = await self._post(body, headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            placed.error = type(exc).__name__
            return placed
        finally:
            self._slots.release()
            # From the scheduled time, not the send: a late send is the load
            # generator's or the connection limit's delay, and hiding it would
            # understate the latency (coordinated omission).
            placed.post_seconds = time.perf_counter() - scheduled
        placed.status = status
        if status == 202:
            placed.order_id = orjson.loads(answer)["id"]
        else:
            placed.error = f"HTTP {status}"
        return placed

    async def open_loop(self, rate: float, duration: float, poisson: bool) -> list[Placed]:
        results: list[Placed] = []
        tasks: set[asyncio.Task[None]] = set()

        async def one(scheduled: float) -> None:
            results.append(await self.place(scheduled))

        start = time.perf_counter()
        due = start
        while True:
            due += self._rng.expovariate(rate) if poisson else 1.0 / rate
            if due - start >= duration:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        return results

    async def closed_loop(
        self, workers: int, duration: float, settle_timeout: float
    ) -> list[Placed]:
        results: list[Placed] = []
        end = time.perf_counter() + duration

        async def worker() -> None:
            while time.perf_counter() < end:
                placed = await self.place(time.perf_counter())
                results.append(placed)
                if placed.order_id is not None:
                    await self._listener.wait_settled(placed.order_id, settle_timeout)
                else:
                    await asyncio.sleep(0.05)  # do not spin on a failing endpoint

        await asyncio.gather(*(worker() for _ in range(workers)))
        return results
