"""Stopping politely, rolling restarts, the broker or the database going away or
behind a network partition, and processes killed at the worst moment.

Outages are made with the session's fault proxies, which sit between the services
and Postgres / RabbitMQ: the servers themselves keep running for everyone else.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime
from itertools import pairwise

import asyncpg
import pytest

from oms_devtools.client import OmsClient, eventually, order_body
from oms_devtools.faultproxy import FaultProxy
from oms_devtools.stack import SERVICES, Stack

from .helpers import place_until_accepted, statuses
from .scenarios import log_lines, metric, readiness, restock_whose_ack_is_lost

pytestmark = pytest.mark.e2e


def placing(oms: OmsClient, sku: str, customer: str) -> Awaitable[str]:
    """One order of `sku`, placed by a client that retries through outages."""
    return place_until_accepted(
        oms.http, [oms.urls["order"]], oms.as_customer(customer), order_body([(sku, 1)])
    )


SETTLED = {"fulfilling", "rejected", "cancelled"}
STOPPED_CLEANLY = "stopped cleanly: intake stopped, work in hand finished, outbox flushed"
# Orders that may wait for inventory or the broker longer than the suite's short
# reservation deadline without being compensated.
PATIENT = {
    "OMS_DEADLINE_RESERVATION_SECONDS": "300",
    "OMS_DEADLINE_PAYMENT_SECONDS": "300",
    "OMS_DEADLINE_SHIPMENT_SECONDS": "300",
}


@pytest.fixture
async def healed(
    database_proxy: FaultProxy, broker_proxy: FaultProxy, stack: Stack
) -> AsyncIterator[None]:
    """Whatever a test breaks, the next one starts with the servers reachable and
    every process ready."""
    yield
    database_proxy.restore()
    broker_proxy.restore()
    for name in stack.all_names():
        if not stack.is_running(name):
            stack.revive(name)
    await stack.wait_ready(timeout=60)


# -- stopping and restarting ---------------------------------------------------------------


async def test_sigterm_finishes_the_messages_in_hand_flushes_the_outbox_and_exits_cleanly(
    oms: OmsClient,
    stack: Stack,
    db: asyncpg.Connection,
    database_proxy: FaultProxy,
    healed: None,
) -> None:
    product = await oms.create_product(on_hand=100)
    # The orders wait for inventory longer than the suite's reservation deadline.
    async with stack.restarted_with("order", PATIENT):
        ids = await _sigterm_inventory_while_it_holds_messages(
            oms, stack, db, database_proxy, product["sku"]
        )
        final = await eventually(
            lambda: statuses(db, ids),
            lambda s: set(s.values()) <= SETTLED and len(s) == 20,
            30,
            "every order to be reserved",
        )
    assert set(final.values()) == {"fulfilling"}
    assert (await oms.product(product["sku"]))["reserved"] == 20
    assert (
        await db.fetchval(
            "SELECT count(*) FROM inventory.stock_movements WHERE sku = $1 AND reason = 'reserve'",
            product["sku"],
        )
        == 20
    )


async def _sigterm_inventory_while_it_holds_messages(
    oms: OmsClient, stack: Stack, db: asyncpg.Connection, database_proxy: FaultProxy, sku: str
) -> list[str]:
    replicas = stack.replica_names("inventory")
    # The reservations queue up while inventory is down; it then comes back to a
    # slow database, so that it holds messages for a while when it is told to stop.
    stack.stop_service("inventory")
    ids = await asyncio.gather(*(placing(oms, sku, "polite") for _ in range(20)))
    database_proxy.delay(0.05)
    await stack.start_service("inventory")

    async def in_hand() -> int:
        reports = [
            await oms.http.get(f"{stack.url(name)}/admin/capacity", headers=oms.admin())
            for name in replicas
        ]
        return sum(report.json()["queues"][0]["in_flight"] or 0 for report in reports)

    await eventually(in_hand, lambda n: n > 0, 20, "inventory to hold messages")
    codes = stack.stop_together(replicas)
    database_proxy.restore()

    # uvicorn re-raises the SIGTERM it handled, so the exit status shows it.
    assert set(codes.values()) <= {0, -signal.SIGTERM}
    held = finished = 0
    for name in replicas:
        lines = log_lines(stack.own_logs(name))
        messages = [line["msg"] for line in lines]
        assert "in-flight messages left unacked; the broker will redeliver them" not in messages
        assert messages.count(STOPPED_CLEANLY) == 1, name
        held += sum(line["in_hand"] for line in lines if line["msg"] == "stopping intake")
        finished += sum(
            line["finished"] for line in lines if line["msg"] == "messages in hand finished"
        )
    assert held > 0, "inventory was stopped while it held messages"
    assert finished >= held, "every message in hand was finished before the exit"
    assert await db.fetchval("SELECT count(*) FROM inventory.outbox") == 0
    await stack.start_service("inventory")
    return ids


async def test_a_rolling_restart_under_load_loses_nothing(
    oms: OmsClient, stack: Stack, db: asyncpg.Connection
) -> None:
    product = await oms.create_product(on_hand=1_000)
    placed: list[str] = []
    done = asyncio.Event()

    async def load() -> None:
        tasks = []
        while not done.is_set():
            tasks.append(asyncio.create_task(placing(oms, product["sku"], "rolling")))
            await asyncio.sleep(0.2)
        placed.extend(await asyncio.gather(*tasks))

    # Saga deadlines of a real deployment (minutes), not the suite's seconds: a
    # process starting on this busy machine can take longer than those.
    async with stack.restarted_with("order", PATIENT):
        loading = asyncio.create_task(load())
        await asyncio.sleep(1)
        for service in SERVICES:  # one after the other, as a deployment would
            await stack.roll(service)
            await asyncio.sleep(0.5)
        done.set()
        await loading
        final = await eventually(
            lambda: statuses(db, placed),
            lambda s: len(s) == len(placed) and set(s.values()) <= SETTLED,
            60,
            "every order to be reserved",
        )
    assert set(final.values()) == {"fulfilling"}
    assert await db.fetchval(
        "SELECT count(*) FROM orders.orders WHERE customer_id = 'rolling'"
    ) == len(placed)
    assert (await oms.product(product["sku"]))["reserved"] == len(placed)


# -- the broker away -----------------------------------------------------------------------


async def test_without_the_broker_the_api_answers_and_the_work_resumes_when_it_returns(
    oms: OmsClient,
    stack: Stack,
    db: asyncpg.Connection,
    broker_proxy: FaultProxy,
    healed: None,
) -> None:
    product = await oms.create_product(on_hand=5)
    # The outage outlasts the suite's short reservation deadline; this order should
    # wait for the broker, not be compensated.
    async with stack.restarted_with("order", PATIENT):
        with broker_proxy.cut_off():
            for service in SERVICES:
                _, checks = await eventually(
                    lambda service=service: readiness(oms, service),
                    lambda answer: answer[0] == 503,
                    20,
                    f"{service} to say it is not ready",
                )
                assert checks == {"database": True, "broker": False}
            assert (await oms.http.get(f"{oms.urls['order']}/healthz")).status_code == 200
            # Orders are still taken: they wait in the outbox.
            accepted = await oms.place_order([(product["sku"], 1)])
            assert accepted.status_code == 202
            order_id = str(accepted.json()["id"])
            assert (await oms.order(order_id))["status"] == "pending"
            assert await waiting_in_the_outbox(db, order_id) > 0
        await stack.wait_ready(timeout=60)
        await oms.wait_for_order(order_id, "fulfilling", timeout=60)


async def waiting_in_the_outbox(db: asyncpg.Connection, order_id: str) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM orders.outbox WHERE correlation_id = $1", order_id
    )
    return count


async def test_through_a_broker_partition_orders_are_taken_and_go_on_when_it_heals(
    oms: OmsClient,
    stack: Stack,
    db: asyncpg.Connection,
    broker_proxy: FaultProxy,
    healed: None,
) -> None:
    """The connections hang instead of closing: nothing tells the services the broker
    is gone but its silence."""
    product = await oms.create_product(on_hand=5)
    with broker_proxy.partitioned():
        # Readiness asks the broker, not the connection's last known state.
        for service in SERVICES:
            status, checks = await readiness(oms, service)
            assert (status, checks) == (503, {"database": True, "broker": False}), service
        started = time.monotonic()
        accepted = await oms.place_order([(product["sku"], 1)])
        assert accepted.status_code == 202
        assert time.monotonic() - started < 2, "taking an order does not wait for the broker"
        order_id = str(accepted.json()["id"])
        assert await waiting_in_the_outbox(db, order_id) > 0
        assert (await oms.order(order_id))["status"] == "pending"
    # Healed: what was held flows on through the same connections.
    await oms.wait_for_order(order_id, "fulfilling", timeout=30)
    await eventually(
        lambda: waiting_in_the_outbox(db, order_id), lambda n: n == 0, 10, "an empty outbox"
    )


# -- the database away ---------------------------------------------------------------------


async def test_without_the_database_the_api_answers_503_and_recovers_on_its_own(
    oms: OmsClient, stack: Stack, database_proxy: FaultProxy, healed: None
) -> None:
    product = await oms.create_product(on_hand=5)
    with database_proxy.cut_off():
        status, checks = await readiness(oms, "order")
        assert (status, checks) == (503, {"database": False, "broker": True})
        assert (await oms.http.get(f"{oms.urls['order']}/healthz")).status_code == 200
        refused = await oms.place_order([(product["sku"], 1)])
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"]
        lookup = await oms.http.get(
            f"{oms.urls['inventory']}/products/{product['sku']}", headers=oms.admin()
        )
        assert lookup.status_code == 503
    await stack.wait_ready(timeout=60)
    accepted = await eventually(
        lambda: oms.place_order([(product["sku"], 1)]),
        lambda r: r.status_code == 202,
        30,
        "an accepted order",
    )
    await oms.wait_for_order(accepted.json()["id"], "fulfilling", timeout=60)


async def test_through_a_database_partition_requests_fail_in_bounded_time_and_recover(
    oms: OmsClient, stack: Stack, database_proxy: FaultProxy, healed: None
) -> None:
    product = await oms.create_product(on_hand=5)
    with database_proxy.partitioned():
        # An answer, not a hang (the clients would wait a minute): the suite's
        # OMS_DB_TIMEOUT_SECONDS is 5, and a request may wait for it twice (its
        # statement, then giving the connection up).
        started = time.monotonic()
        (status, checks), refused, lookup = await asyncio.gather(
            readiness(oms, "order"),
            oms.http.post(
                f"{oms.urls['order']}/orders",
                json=order_body([(product["sku"], 1)]),
                headers=oms.as_customer(),
                timeout=60,
            ),
            oms.http.get(
                f"{oms.urls['inventory']}/products/{product['sku']}",
                headers=oms.admin(),
                timeout=60,
            ),
        )
        assert time.monotonic() - started < 30
        assert (status, checks) == (503, {"database": False, "broker": True})
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert lookup.status_code == 503, lookup.text
        assert (await oms.http.get(f"{oms.urls['order']}/healthz")).status_code == 200
    await stack.wait_ready(timeout=60)
    accepted = await eventually(
        lambda: oms.place_order([(product["sku"], 1)]),
        lambda r: r.status_code == 202,
        30,
        "an accepted order",
    )
    await oms.wait_for_order(accepted.json()["id"], "fulfilling", timeout=60)


# -- killed at the worst moment ------------------------------------------------------------


async def test_a_message_whose_ack_was_lost_is_redelivered_and_absorbed_by_the_inbox(
    oms: OmsClient,
    stack: Stack,
    db: asyncpg.Connection,
    broker_proxy: FaultProxy,
    test_amqp_url: str,
    healed: None,
) -> None:
    await restock_whose_ack_is_lost(oms, stack, db, broker_proxy, test_amqp_url)


async def test_messages_committed_by_a_process_killed_before_publishing_them_are_sent(
    oms: OmsClient,
    stack: Stack,
    db: asyncpg.Connection,
    broker_proxy: FaultProxy,
    healed: None,
) -> None:
    product = await oms.create_product(on_hand=5)
    async with stack.restarted_with("order", PATIENT):
        with broker_proxy.cut_off():
            accepted = await oms.place_order([(product["sku"], 1)])
            assert accepted.status_code == 202
            order_id = str(accepted.json()["id"])
            assert await waiting_in_the_outbox(db, order_id) > 0
            for name in stack.replica_names("order"):
                stack.kill(name)  # committed, never published: the hand-over dies with it
        await stack.start_service("order")
        # A sweep of the restarted relays finds the rows nobody handed over.
        await oms.wait_for_order(order_id, "fulfilling", timeout=30)
    await eventually(
        lambda: waiting_in_the_outbox(db, order_id), lambda n: n == 0, 10, "an empty outbox"
    )


# -- replicas ------------------------------------------------------------------------------


async def test_every_replica_takes_work_and_one_sweeper_acts_on_an_overdue_order(
    oms: OmsClient, stack: Stack, db: asyncpg.Connection
) -> None:
    # Two order processes at least, so that two sweepers race for the deadline.
    extra = [] if stack.replicas > 1 else [stack.start_extra("order")]
    sweepers = stack.replica_names("order") + extra
    try:
        await stack.wait_ready(extra)
        product = await oms.create_product(on_hand=100)
        before = {
            (service, name): await metric(
                oms, stack.url(name), "oms_messages_consumed_total", outcome="handled"
            )
            for service in SERVICES
            for name in stack.replica_names(service)
        }
        ids = await asyncio.gather(*(placing(oms, product["sku"], "spread") for _ in range(20)))
        await eventually(
            lambda: statuses(db, ids),
            lambda s: len(s) == 20 and set(s.values()) == {"fulfilling"},
            30,
            "every order to be fulfilling",
        )
        for (service, name), handled in before.items():
            now = await metric(
                oms, stack.url(name), "oms_messages_consumed_total", outcome="handled"
            )
            assert now > handled, f"{name} took no {service} work"

        # An order inventory never answers: its reservation deadline passes once.
        async with stack.stopped("inventory"):
            overdue = (await oms.place_order([(product["sku"], 1)])).json()["id"]
            await oms.wait_for_order(overdue, "cancelling", "cancelled", timeout=30)
        order = await oms.wait_for_order(overdue, "cancelled", timeout=30)
        assert order["status_reason"] == "reservation_timeout"
        noticed = [
            (name, line)
            for name in sweepers
            for line in log_lines(stack.logs(name))
            if line["msg"] == "saga step overdue"
            and line.get("correlation_id") == overdue
            and line.get("status") == "pending"
        ]
        assert len(noticed) == 1, noticed
        # The sweeps' own entries (no message caused them): the compensation, then its
        # re-sends while inventory was down, OMS_DEADLINE_RETRY_SECONDS (1) or more
        # apart. Two sweepers acting on the same deadline would write two at once.
        swept = [
            datetime.fromisoformat(entry["occurred_at"])
            for entry in await oms.history(overdue)
            if entry["step"] == "compensation_requested" and entry["message_id"] is None
        ]
        assert swept
        gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(swept)]
        assert all(gap >= 0.9 for gap in gaps), swept
    finally:
        for name in extra:
            stack.stop(name)
