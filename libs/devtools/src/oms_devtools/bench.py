"""Benchmark of the whole saga: load, latency, throughput, CPU, correctness, capacity.

    python -m oms_devtools.bench [--rate 100] [--duration 30] [--max-rate-duration 30]
                                 [--workers 64] [--mix ok=90,declined=5,out_of_stock=5]
                                 [--out bench-results/bench-<timestamp>.json]

Starts the four services and the gateway simulator on their own ports (19000-19003,
19090) against a throwaway database and RabbitMQ vhost, with shipments dispatched
automatically, and runs two phases:

1. open loop: orders arrive at `--rate` per second (Poisson arrivals) whatever
   the system does, each POST sent at its scheduled time without waiting for
   earlier answers, so queueing shows up as latency instead of slowing the load;
2. max rate: `--workers` clients in a closed loop, each placing an order and
   waiting for its final outcome before the next, so the system runs flat out
   without building an unbounded backlog.

POST latency is measured by the client; the time to `paid`, `shipped` and the final
outcome by consuming the order events from `oms.events` with a queue of its own
(no polling). After each phase it waits (bounded) for every order to settle, and at
the end checks that the run was correct: every order settled with the outcome its
kind calls for, stock conserved, nothing left reserved, captured money equal to the
shipped orders' totals. Exit status 0 only on PASS. Results go to a JSON file; the
database, vhost and processes are removed even on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import aio_pika
import asyncpg
import httpx
import orjson
from aio_pika.abc import AbstractIncomingMessage

from oms_devtools import infra
from oms_devtools.capacity import fetch_capacity, format_table
from oms_devtools.client import ADDRESS, OmsClient
from oms_devtools.procstat import KERNEL, STEAL, ProcStat, cmdline, machine_seconds, read_proc_stats
from oms_devtools.stack import GATEWAY, SERVICES, Stack
from oms_runtime.auth import mint_token
from oms_runtime.db import libpq_url

KINDS = ("ok", "declined", "out_of_stock")
EXPECTED = {
    "ok": ("shipped", None),
    "declined": ("cancelled", "payment_declined"),
    "out_of_stock": ("rejected", "out_of_stock"),
}
FINAL_EVENTS = {
    "order.shipped": "shipped",
    "order.rejected": "rejected",
    "order.cancelled": "cancelled",
}
WATCHED_EVENTS = (*FINAL_EVENTS, "order.paid", "order.requires_attention")
SETTLED_STATUSES = ("shipped", "completed", "rejected", "cancelled")
OK_SKUS = 20
STOCK_PER_SKU = 1_000_000


# -- what is measured ----------------------------------------------------------------


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


# -- CPU accounting ------------------------------------------------------------------

BENCH = "bench (load generator)"
POSTGRES_OURS = "postgres: bench database backends"
POSTGRES_REST = "postgres: other (background, other databases)"
RABBITMQ = "rabbitmq"
OTHER_PROCESSES = "other processes"


class CpuMeter:
    """CPU seconds per group of processes, accumulated per pid by polling /proc.

    A one-off before/after difference would lose every process that exits in
    between (Postgres backends of closed pool connections, for one), so the meter
    polls and adds each pid's increments; a process that exits loses at most its
    last poll interval. Groups: each stack process (with its children), the
    Postgres backends of the bench database, the rest of Postgres, RabbitMQ, the
    bench itself, and everything else; the kernel's interrupt time and the time
    the hypervisor stole come from /proc/stat, as they belong to no process.
    """

    def __init__(self, stack: Stack, database_name: str, interval: float = 1.0) -> None:
        self._stack = stack
        self._database_marker = f" {database_name} "
        self._interval = interval
        self._seen: dict[int, tuple[str, float]] = {}
        self.totals: dict[str, float] = {}
        self._machine_start = machine_seconds()
        self._task: asyncio.Task[None] | None = None

    def _group(self, stat: ProcStat, by_pid: Mapping[int, ProcStat]) -> str:
        roots = {process.pid: name for name, process in self._stack.processes.items()}
        ancestor: ProcStat | None = stat
        for _ in range(64):  # bounded walk up the parent chain
            if ancestor is None:
                break
            if ancestor.pid in roots:
                return roots[ancestor.pid]
            if ancestor.pid == os.getpid():
                return BENCH
            ancestor = by_pid.get(ancestor.ppid)
        if stat.comm == "postgres":
            return POSTGRES_OURS if self._database_marker in cmdline(stat.pid) else POSTGRES_REST
        if stat.comm == "beam.smp":
            return RABBITMQ
        return OTHER_PROCESSES

    def poll(self) -> None:
        stats = read_proc_stats()
        by_pid = {stat.pid: stat for stat in stats}
        for stat in stats:
            known = self._seen.get(stat.pid)
            if known is None or known[0] == POSTGRES_REST:
                # A new backend may not have set its title yet: ask again later.
                group = self._group(stat, by_pid)
                previous = known[1] if known is not None else stat.cpu_seconds
                # A pid first seen counts from now: its earlier CPU was before the run.
            else:
                group, previous = known
            self.totals[group] = self.totals.get(group, 0.0) + max(0.0, stat.cpu_seconds - previous)
            self._seen[stat.pid] = (group, stat.cpu_seconds)
        for pid in set(self._seen) - set(by_pid):
            del self._seen[pid]

    def sample(self) -> dict[str, float]:
        """Cumulative seconds per group and of the machine, for `cpu_split`."""
        self.poll()
        machine = machine_seconds()
        return {
            **self.totals,
            **{
                f"machine {kind}": seconds - self._machine_start[kind]
                for kind, seconds in machine.items()
            },
        }

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.poll()

    def start(self) -> None:
        self.poll()
        self._task = asyncio.create_task(self.run(), name="cpu-meter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def cpu_split(
    before: Mapping[str, float], after: Mapping[str, float], wall: float
) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    capacity = wall * cores

    def row(seconds: float) -> dict[str, float]:
        return {
            "cpu_seconds": round(seconds, 2),
            "percent_of_one_core": round(100 * seconds / wall, 1) if wall else 0.0,
            "percent_of_machine": round(100 * seconds / capacity, 1) if capacity else 0.0,
        }

    def delta(name: str) -> float:
        return max(0.0, after.get(name, 0.0) - before.get(name, 0.0))

    groups = [name for name in after if not name.startswith("machine ")]
    rows = {name: row(delta(name)) for name in groups}
    for kind in (KERNEL, STEAL):
        rows[kind] = row(delta(f"machine {kind}"))
    idle = delta("machine idle")
    return {
        "wall_seconds": round(wall, 2),
        "cores": cores,
        "machine_busy_percent": round(100 * (1 - idle / capacity), 1) if capacity else 0.0,
        "processes": rows,
    }


# -- statistics ----------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks (as numpy's default)."""
    if not sorted_values:
        raise ValueError("no values")
    position = (len(sorted_values) - 1) * fraction
    lower = int(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    weight = position - lower
    return sorted_values[lower] * (1 - weight) + sorted_values[upper] * weight


def latency_summary(seconds: Iterable[float]) -> dict[str, float | int | None]:
    values = sorted(seconds)
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    return {
        "n": len(values),
        "p50": round(percentile(values, 0.50) * 1000, 2),
        "p95": round(percentile(values, 0.95) * 1000, 2),
        "p99": round(percentile(values, 0.99) * 1000, 2),
        "max": round(values[-1] * 1000, 2),
        "mean": round(sum(values) / len(values) * 1000, 2),
    }


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


# -- the load generator --------------------------------------------------------------


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
        # Requests beyond the connection limit queue here, not in httpx's pool,
        # whose bookkeeping grows with the square of its waiters: with thousands
        # waiting, the load generator would steal the CPU the services need.
        self._slots = asyncio.Semaphore(max_connections)
        # Several small pools rather than one big one: httpcore checks every pooled
        # connection (a system call each) on each request, CPU the services would
        # miss. A request goes to the pool with the fewest requests in flight.
        pool_size = 16
        self._clients = [
            httpx.AsyncClient(
                limits=httpx.Limits(
                    max_connections=pool_size,
                    max_keepalive_connections=pool_size,
                    # Shorter than the server's keep-alive (uvicorn: 5 s), so an idle
                    # connection is never reused just as the server closes it.
                    keepalive_expiry=2.0,
                ),
                timeout=httpx.Timeout(request_timeout),
            )
            for _ in range(max(1, -(-max_connections // pool_size)))
        ]
        self._in_flight = [0] * len(self._clients)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    async def _post(self, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        index = min(range(len(self._clients)), key=self._in_flight.__getitem__)
        self._in_flight[index] += 1
        try:
            return await self._clients[index].post(self._url, content=body, headers=headers)
        finally:
            self._in_flight[index] -= 1

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
            response = await self._post(body, headers)
        except httpx.HTTPError as exc:
            placed.error = type(exc).__name__
            return placed
        finally:
            self._slots.release()
            # From the scheduled time, not the send: a late send is the load
            # generator's or the connection limit's delay, and hiding it would
            # understate the latency (coordinated omission).
            placed.post_seconds = time.perf_counter() - scheduled
        placed.status = response.status_code
        if response.status_code == 202:
            placed.order_id = response.json()["id"]
        else:
            placed.error = f"HTTP {response.status_code}"
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


# -- phases --------------------------------------------------------------------------


@dataclass
class PhaseRun:
    name: str
    description: str
    duration: float
    offered_rate: float | None
    started: float
    load_ended: float
    settled_at: float
    placed: list[Placed]
    cpu: dict[str, Any]
    capacity: dict[str, Any]


async def wait_all_settled(
    listener: EventListener, placed: Sequence[Placed], timeout: float
) -> float:
    deadline = time.perf_counter() + timeout
    pending = [p.order_id for p in placed if p.order_id is not None]
    while pending and time.perf_counter() < deadline:
        pending = [order_id for order_id in pending if not listener.is_settled(order_id)]
        if pending:
            await asyncio.sleep(0.1)
    return time.perf_counter()


async def wait_until_quiet(database_url: str, timeout: float) -> None:
    """Until the work an order does after its final event (capturing the money,
    committing the stock, publishing) is done too, so a phase does not start behind
    the previous one's backlog."""
    connection = await asyncpg.connect(libpq_url(database_url))
    deadline = time.perf_counter() + timeout
    try:
        while time.perf_counter() < deadline:
            busy = await connection.fetchval(
                "SELECT (SELECT count(*) FROM payment.payments WHERE status = 'authorized')"
                " + (SELECT count(*) FROM inventory.reservations WHERE status = 'reserved')"
                " + (SELECT count(*) FROM orders.outbox) + (SELECT count(*) FROM inventory.outbox)"
                " + (SELECT count(*) FROM payment.outbox) + (SELECT count(*) FROM shipping.outbox)"
            )
            if busy == 0:
                return
            await asyncio.sleep(0.2)
    finally:
        await connection.close()


def summarise(phase: PhaseRun, listener: EventListener) -> dict[str, Any]:
    accepted = [p for p in phase.placed if p.order_id is not None]
    errors = Counter(p.error for p in phase.placed if p.error is not None)
    outcomes: Counter[str] = Counter()
    finals_in_window = 0
    last_final = phase.started
    paid, shipped, final, attention = [], [], [], 0
    for p in accepted:
        assert p.order_id is not None
        outcome = listener.outcomes.get(p.order_id)
        if outcome is None or outcome.final is None or outcome.final_at is None:
            outcomes["unsettled"] += 1
            continue
        outcomes[outcome.final] += 1
        if "order.requires_attention" in outcome.seen:
            attention += 1
        final.append(outcome.final_at - p.scheduled)
        last_final = max(last_final, outcome.final_at)
        if outcome.final_at <= phase.started + phase.duration:
            finals_in_window += 1
        if "order.paid" in outcome.seen:
            paid.append(outcome.seen["order.paid"] - p.scheduled)
        if "order.shipped" in outcome.seen:
            shipped.append(outcome.seen["order.shipped"] - p.scheduled)
    window = phase.duration
    settled = sum(outcomes[name] for name in FINAL_EVENTS.values())
    drain = max(0.0, last_final - (phase.started + phase.duration))
    lag = [p.started - p.scheduled for p in phase.placed]
    return {
        "name": phase.name,
        "description": phase.description,
        "duration_seconds": round(window, 2),
        "offered_rate": phase.offered_rate,
        "sent": len(phase.placed),
        "sent_per_second": round(len(phase.placed) / window, 1) if window else 0.0,
        "accepted": len(accepted),
        "errors": sum(errors.values()),
        "errors_by_kind": dict(errors),
        "kinds": dict(Counter(p.kind for p in phase.placed)),
        "outcomes": {
            **{name: outcomes[name] for name in FINAL_EVENTS.values()},
            "unsettled": outcomes["unsettled"],
        },
        "requires_attention_seen": attention,
        "completed_per_second": round(finals_in_window / window, 1) if window else 0.0,
        "completed_per_second_incl_drain": round(settled / (last_final - phase.started), 1)
        if settled and last_final > phase.started
        else 0.0,
        "drain_seconds": round(drain, 2),
        "latency_ms": {
            "post": latency_summary(p.post_seconds for p in accepted if p.post_seconds is not None),
            "post_to_paid": latency_summary(paid),
            "post_to_shipped": latency_summary(shipped),
            "post_to_final": latency_summary(final),
            "send_lag": latency_summary(lag),
        },
        "timeline": timeline(phase, listener),
        "cpu": phase.cpu,
        "capacity": phase.capacity,
    }


def timeline(phase: PhaseRun, listener: EventListener) -> list[dict[str, Any]]:
    """Per second of the phase (drain included): orders due, POST latency of those,
    and orders that reached their final outcome in that second. Shows when a queue
    starts to build, which the percentiles of the whole phase hide."""
    due: dict[int, list[Placed]] = {}
    for p in phase.placed:
        due.setdefault(int(p.scheduled - phase.started), []).append(p)
    finals: Counter[int] = Counter()
    for p in phase.placed:
        outcome = listener.outcomes.get(p.order_id) if p.order_id else None
        if outcome is not None and outcome.final_at is not None:
            finals[int(outcome.final_at - phase.started)] += 1
    seconds = max([*due, *finals], default=-1) + 1
    rows = []
    for second in range(seconds):
        placed = due.get(second, [])
        post = latency_summary(
            p.post_seconds for p in placed if p.order_id is not None and p.post_seconds is not None
        )
        rows.append(
            {
                "second": second,
                "sent": len(placed),
                "errors": sum(1 for p in placed if p.error is not None),
                "post_p50_ms": post["p50"],
                "post_max_ms": post["max"],
                "completed": finals[second],
            }
        )
    return rows


# -- correctness ---------------------------------------------------------------------


@dataclass
class Check:
    name: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


async def _eventually(probe: Any, timeout: float) -> tuple[bool, Any]:
    """Run `probe()` -> (ok, detail) until ok or `timeout`; the last answer wins."""
    deadline = time.perf_counter() + timeout
    while True:
        ok, detail = await probe()
        if ok or time.perf_counter() > deadline:
            return ok, detail
        await asyncio.sleep(0.25)


async def check_correctness(
    database_url: str,
    oms: OmsClient,
    placed: Sequence[Placed],
    listener: EventListener,
    initial_stock: Mapping[str, int],
    timeout: float,
) -> list[Check]:
    checks: list[Check] = []
    errors = [p for p in placed if p.error is not None]
    checks.append(
        Check(
            "every POST was accepted",
            not errors,
            f"{len(errors)} of {len(placed)} failed: {dict(Counter(p.error for p in errors))}"
            if errors
            else f"{len(placed)} accepted",
        )
    )
    accepted = {p.order_id: p for p in placed if p.order_id is not None}
    unsettled_events = [oid for oid in accepted if not listener.is_settled(oid)]
    checks.append(
        Check(
            "every order's final event arrived",
            not unsettled_events,
            f"{len(unsettled_events)} without shipped/rejected/cancelled event"
            if unsettled_events
            else f"{len(accepted)} orders",
        )
    )

    connection = await asyncpg.connect(libpq_url(database_url))
    try:
        rows = await connection.fetch(
            "SELECT id::text AS id, status, status_reason, total FROM orders.orders"
        )
        by_id = {row["id"]: row for row in rows}
        not_settled = Counter(
            row["status"] for row in rows if row["status"] not in SETTLED_STATUSES
        )
        checks.append(
            Check(
                "every order in the database settled",
                not not_settled,
                f"still {dict(not_settled)}" if not_settled else f"{len(rows)} orders",
            )
        )
        unknown = len(set(by_id) - set(accepted))
        mismatched: Counter[str] = Counter()
        for order_id, p in accepted.items():
            row = by_id.get(order_id)
            want_status, want_reason = EXPECTED[p.kind]
            got = (row["status"], row["status_reason"]) if row is not None else ("missing", None)
            status_ok = got[0] == want_status or (
                want_status == "shipped" and got[0] == "completed"
            )
            if not status_ok or (want_reason is not None and got[1] != want_reason):
                mismatched[f"{p.kind} -> {got[0]}/{got[1]}"] += 1
            outcome = listener.outcomes.get(order_id)
            if outcome is not None and outcome.final is not None and outcome.final != want_status:
                mismatched[f"{p.kind} -> event {outcome.final}/{outcome.reason}"] += 1
        detail = (
            f"mismatches {dict(mismatched)}"
            if mismatched
            else "ok -> shipped, declined -> cancelled/payment_declined, "
            "out_of_stock -> rejected/out_of_stock"
        )
        if unknown:
            detail += f"; {unknown} orders in the database unknown to the client (failed POSTs)"
        checks.append(Check("every order ended as its kind calls for", not mismatched, detail))

        async def shipped_units() -> dict[str, int]:
            units = await connection.fetch(
                "SELECT l->>'sku' AS sku, sum((l->>'quantity')::int)::bigint AS units "
                "FROM orders.orders o, jsonb_array_elements(o.lines) AS l "
                "WHERE o.status IN ('shipped', 'completed') GROUP BY 1"
            )
            return {row["sku"]: int(row["units"]) for row in units}

        async def stock_probe() -> tuple[bool, Any]:
            shipped = await shipped_units()
            products = {}
            cursor: str | None = None
            while True:
                params: dict[str, Any] = {"limit": 200}
                if cursor:
                    params["cursor"] = cursor
                response = await oms.http.get(
                    f"{oms.urls['inventory']}/products", params=params, headers=oms.admin()
                )
                response.raise_for_status()
                page = response.json()
                products.update({item["sku"]: item for item in page["items"]})
                cursor = page["next_cursor"]
                if not cursor:
                    break
            wrong = {}
            for sku, initial in initial_stock.items():
                product = products.get(sku)
                want = initial - shipped.get(sku, 0)
                if product is None or product["on_hand"] != want or product["reserved"] != 0:
                    wrong[sku] = {
                        "expected_on_hand": want,
                        "on_hand": product and product["on_hand"],
                        "reserved": product and product["reserved"],
                    }
            return (
                not wrong,
                wrong or f"{len(initial_stock)} SKUs, {sum(shipped.values())} units shipped",
            )

        ok, detail = await _eventually(stock_probe, timeout)
        checks.append(
            Check("stock conserved, nothing left reserved (inventory API)", ok, str(detail))
        )

        async def money_probe() -> tuple[bool, Any]:
            captured = await connection.fetchval(
                "SELECT coalesce(sum(captured_amount), 0) FROM payment.payments"
            )
            owed = await connection.fetchval(
                "SELECT coalesce(sum(total), 0) FROM orders.orders "
                "WHERE status IN ('shipped', 'completed')"
            )
            held = await connection.fetchval(
                "SELECT count(*) FROM payment.payments WHERE status = 'authorized'"
            )
            detail = f"captured {captured}, shipped orders' totals {owed}, still authorized {held}"
            return captured == owed and held == 0, detail

        ok, detail = await _eventually(money_probe, timeout)
        checks.append(Check("captured money equals the shipped orders' totals", ok, detail))
    finally:
        await connection.close()
    return checks


# -- printing ------------------------------------------------------------------------


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_phase(summary: Mapping[str, Any]) -> str:
    lines = [
        f"== {summary['name']}: {summary['description']}",
        f"   sent {summary['sent']} ({summary['sent_per_second']}/s), accepted "
        f"{summary['accepted']}, errors {summary['errors']} {summary['errors_by_kind'] or ''}",
        f"   completed {summary['completed_per_second']} orders/s during the load "
        f"({summary['completed_per_second_incl_drain']}/s counting the "
        f"{summary['drain_seconds']} s drain)",
        "   outcomes " + ", ".join(f"{k} {v}" for k, v in summary["outcomes"].items()),
        f"   {'latency (ms)':<22}{'n':>7}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}",
    ]
    names = {
        "post": "POST /orders",
        "post_to_paid": "POST -> paid",
        "post_to_shipped": "POST -> shipped",
        "post_to_final": "POST -> final outcome",
        "send_lag": "load generator lag",
    }
    for key, title in names.items():
        stats = summary["latency_ms"][key]
        lines.append(
            f"   {title:<22}{stats['n']:>7}{_ms(stats['p50']):>9}{_ms(stats['p95']):>9}"
            f"{_ms(stats['p99']):>9}{_ms(stats['max']):>9}"
        )
    cpu = summary["cpu"]
    lines.append(
        f"   CPU over {cpu['wall_seconds']} s on {cpu['cores']} cores "
        f"(machine {cpu['machine_busy_percent']}% busy)"
    )
    lines.append(f"   {'process':<46}{'cpu s':>9}{'% core':>9}{'% machine':>11}")
    for name, row in sorted(
        cpu["processes"].items(), key=lambda item: -float(item[1]["cpu_seconds"])
    ):
        lines.append(
            f"   {name:<46}{row['cpu_seconds']:>9.2f}{row['percent_of_one_core']:>9.1f}"
            f"{row['percent_of_machine']:>11.1f}"
        )
    return "\n".join(lines)


# -- the run -------------------------------------------------------------------------


@dataclass
class Environment:
    run_id: str
    database_url: str
    vhost: str
    amqp_url: str
    stack: Stack
    jwt_secret: str
    carrier_secret: str


async def run_phase(
    name: str,
    description: str,
    duration: float,
    offered_rate: float | None,
    load: Any,
    env: Environment,
    meter: CpuMeter,
    listener: EventListener,
    oms: OmsClient,
    settle_timeout: float,
) -> PhaseRun:
    print(f"-- {name}: {description} ...", flush=True)
    cpu_before = meter.sample()
    started = time.perf_counter()
    load_task = asyncio.create_task(load)
    # The consumers' view of the load, taken just before it stops.
    await asyncio.sleep(max(0.0, duration - 0.5))
    capacity = await fetch_capacity(
        {service: oms.urls[service] for service in SERVICES},
        oms.admin_token,
        window_seconds=min(60.0, max(1.0, duration - 0.5)),
    )
    placed = await load_task
    load_ended = time.perf_counter()
    settled_at = await wait_all_settled(listener, placed, settle_timeout)
    cpu_after = meter.sample()
    return PhaseRun(
        name=name,
        description=description,
        duration=duration,
        offered_rate=offered_rate,
        started=started,
        load_ended=load_ended,
        settled_at=settled_at,
        placed=placed,
        cpu=cpu_split(cpu_before, cpu_after, settled_at - started),
        capacity=capacity,
    )


async def migrate_in_parallel(database_url: str) -> None:
    """`infra.migrate_all`, all services at once: each owns its schema, and the
    bench's start-up time counts in the smoke test's budget."""

    async def migrate(service: str) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            f"oms_{service}",
            "migrate",
            env={**os.environ, "OMS_DATABASE_URL": database_url},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"migrating {service} failed:\n{output.decode(errors='replace')}")

    await asyncio.gather(*(migrate(service) for service in SERVICES))


async def run(args: argparse.Namespace, env: Environment, out: Path) -> int:
    started_at = datetime.now(UTC)
    print(f"bench {env.run_id}: database {env.database_url}, vhost {env.vhost}", flush=True)
    await infra.recreate_database(env.database_url)
    await migrate_in_parallel(env.database_url)
    env.stack.start_all()
    await env.stack.wait_ready()

    oms = OmsClient(
        {name: env.stack.url(name) for name in (*SERVICES, GATEWAY)},
        jwt_secret=env.jwt_secret,
        carrier_secret=env.carrier_secret,
    )
    listener = EventListener(env.amqp_url)
    await listener.start()
    rng = random.Random(args.seed)
    initial_stock: dict[str, int] = {}
    ok_skus = []
    for index in range(OK_SKUS):
        product = await oms.create_product(
            on_hand=STOCK_PER_SKU,
            unit_price=rng.randrange(100, 10_000),
            sku=f"BENCH-{index:02d}",
        )
        ok_skus.append(product["sku"])
        initial_stock[product["sku"]] = STOCK_PER_SKU
    empty = await oms.create_product(on_hand=0, unit_price=999, sku="BENCH-EMPTY")
    initial_stock[empty["sku"]] = 0

    tokens = [mint_token(env.jwt_secret, f"bench-{i}", "customer", 24 * 3600) for i in range(16)]
    load = LoadGenerator(
        oms.urls["order"],
        tokens,
        ok_skus,
        empty["sku"],
        args.mix,
        listener,
        seed=args.seed,
        max_connections=max(256, args.workers * 2),
        request_timeout=args.request_timeout,
    )
    meter = CpuMeter(env.stack, env.database_url.rsplit("/", 1)[-1])
    meter.start()
    phases: list[PhaseRun] = []
    try:
        if args.duration > 0:
            arrivals = "Poisson" if args.arrivals == "poisson" else "evenly spaced"
            phases.append(
                await run_phase(
                    "open loop",
                    f"{args.rate:g} orders/s offered for {args.duration:g} s ({arrivals} arrivals)",
                    args.duration,
                    args.rate,
                    load.open_loop(args.rate, args.duration, args.arrivals == "poisson"),
                    env,
                    meter,
                    listener,
                    oms,
                    args.settle_timeout,
                )
            )
        if args.max_rate_duration > 0:
            if phases:
                await wait_until_quiet(env.database_url, args.settle_timeout)
            phases.append(
                await run_phase(
                    "max rate",
                    f"{args.workers} closed-loop clients for {args.max_rate_duration:g} s "
                    "(each waits for its order's final outcome)",
                    args.max_rate_duration,
                    None,
                    load.closed_loop(args.workers, args.max_rate_duration, args.settle_timeout),
                    env,
                    meter,
                    listener,
                    oms,
                    args.settle_timeout,
                )
            )
        all_placed = [p for phase in phases for p in phase.placed]
        checks = await check_correctness(
            env.database_url, oms, all_placed, listener, initial_stock, args.check_timeout
        )
    finally:
        await meter.stop()
        await load.aclose()
        await listener.close()
        await oms.aclose()

    summaries = [summarise(phase, listener) for phase in phases]
    passed = all(check.passed for check in checks)
    print()
    for summary in summaries:
        print(format_phase(summary))
        print()
    print("== correctness")
    for check in checks:
        print(f"   [{'ok' if check.passed else 'FAIL'}] {check.name}: {check.detail}")
    print(f"   {'PASS' if passed else 'FAIL'}")
    for summary in summaries:
        print()
        print(f"== capacity at the end of the {summary['name']} phase")
        print(format_table(summary["capacity"]))

    result = {
        "run_id": env.run_id,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "config": {
            "rate": args.rate,
            "duration": args.duration,
            "max_rate_duration": args.max_rate_duration,
            "workers": args.workers,
            "mix": args.mix,
            "arrivals": args.arrivals,
            "seed": args.seed,
            "service_env": {
                key: value for key, value in env.stack.env.items() if "SECRET" not in key
            },
        },
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "phases": summaries,
        "correctness": {"passed": passed, "checks": [check.as_dict() for check in checks]},
        "verdict": "PASS" if passed else "FAIL",
        "logs": str(env.stack.log_dir),
    }
    await asyncio.to_thread(_write_json, out, result)
    print(f"\nresults: {out}\nservice logs: {env.stack.log_dir}")
    return 0 if passed else 1


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m oms_devtools.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop orders/s")
    parser.add_argument("--duration", type=float, default=30.0, help="open-loop seconds (0: skip)")
    parser.add_argument(
        "--max-rate-duration", type=float, default=30.0, help="max-rate seconds (0: skip)"
    )
    parser.add_argument("--workers", type=int, default=64, help="max-rate concurrent clients")
    parser.add_argument(
        "--mix",
        type=parse_mix,
        default=parse_mix("ok=90,declined=5,out_of_stock=5"),
        help="share of each kind of order (default ok=90,declined=5,out_of_stock=5)",
    )
    parser.add_argument("--arrivals", choices=("poisson", "uniform"), default="poisson")
    parser.add_argument("--out", type=Path, help="JSON results file")
    parser.add_argument("--base-port", type=int, default=19000, help="first service port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--settle-timeout", type=float, default=120.0, help="max wait for orders to settle"
    )
    parser.add_argument(
        "--check-timeout", type=float, default=30.0, help="max wait for stock and money to settle"
    )
    parser.add_argument("--request-timeout", type=float, default=10.0)
    parser.add_argument(
        "--keep-database", action="store_true", help="leave the run's database for a look"
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.workers < 1:
        parser.error("--rate must be positive and --workers at least 1")
    if args.out is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        args.out = Path("bench-results") / f"bench-{stamp}.json"
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    vhost, database_url, amqp_url = infra.throwaway_urls("oms_bench")
    run_id = vhost.removeprefix("oms_bench_")
    out: Path = args.out
    jwt_secret = secrets.token_urlsafe(32)
    carrier_secret = secrets.token_urlsafe(16)
    stack = Stack(
        database_url=database_url,
        amqp_url=amqp_url,
        log_dir=out.with_name(out.stem + "-logs"),
        base_port=args.base_port,
        gateway_port=args.base_port + 90,
        env={
            "OMS_JWT_SECRET": jwt_secret,
            "OMS_CARRIER_SECRET": carrier_secret,
            "OMS_AUTO_DISPATCH": "true",
            "OMS_LOG_LEVEL": os.environ.get("OMS_BENCH_LOG_LEVEL", "WARNING"),
            "OMS_ACCESS_LOG": "false",
        },
    )
    env = Environment(run_id, database_url, vhost, amqp_url, stack, jwt_secret, carrier_secret)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        infra.create_vhost(vhost)
        return _run_loop(run(args, env, out))
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        _stop_in_parallel(env.stack)
        if args.keep_database:
            print(f"database kept: {env.database_url}", file=sys.stderr)
        else:
            with contextlib.suppress(Exception):
                asyncio.run(infra.drop_database(env.database_url))
        with contextlib.suppress(Exception):
            infra.delete_vhost(vhost)


def _run_loop(coroutine: Any) -> int:
    try:
        import uvloop
    except ImportError:  # the load generator then just costs more CPU
        return int(asyncio.run(coroutine))
    return int(uvloop.run(coroutine))


def _stop_in_parallel(stack: Stack) -> None:
    """Graceful stops, all at once: one after the other can take a while."""
    names = list(stack.processes)
    if names:
        with ThreadPoolExecutor(len(names)) as pool:
            list(pool.map(stack.stop, names))


if __name__ == "__main__":
    sys.exit(main())
