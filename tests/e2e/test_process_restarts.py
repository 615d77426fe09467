"""Stopping politely, rolling restarts, processes killed at the worst moment, and
replicas sharing the work. (Outages of the servers: test_server_outages.py.)"""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime
from itertools import pairwise

import asyncpg
import pytest

from oms_devtools.client import OmsClient, eventually
from oms_devtools.faultproxy import FaultProxy
from oms_devtools.stack import SERVICES, Stack

from .helpers import statuses
from .scenarios import (
    PATIENT,
    SETTLED,
    held_in_the_outbox,
    log_lines,
    metric,
    placing,
    restock_whose_ack_is_lost,
    sent_on,
)

pytestmark = pytest.mark.e2e

STOPPED_CLEANLY = "stopped cleanly: intake stopped, work in hand finished, outbox flushed"


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
            order_id = await held_in_the_outbox(oms, db, product["sku"])
            for name in stack.replica_names("order"):
                stack.kill(name)  # committed, never published: the hand-over dies with it
        await stack.start_service("order")
        # A sweep of the restarted relays finds the rows nobody handed over.
        await sent_on(oms, db, order_id)


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
