"""The broker or the database going away or behind a network partition, while the
services keep answering what they can and resume on their own.

Outages are made with the session's fault proxies, which sit between the services
and Postgres / RabbitMQ: the servers themselves keep running for everyone else.
"""

from __future__ import annotations

import asyncio
import signal
import time

import asyncpg
import pytest

from oms_devtools.client import OmsClient, eventually, order_body
from oms_devtools.faultproxy import FaultProxy
from oms_devtools.stack import SERVICES, Stack

from .scenarios import (
    PATIENT,
    held_in_the_outbox,
    readiness,
    sent_on,
)

pytestmark = pytest.mark.e2e


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
            order_id = await held_in_the_outbox(oms, db, product["sku"])
            assert (await oms.order(order_id))["status"] == "pending"
        await stack.wait_ready(timeout=60)
        await oms.wait_for_order(order_id, "fulfilling", timeout=60)


async def test_a_service_stopped_while_the_broker_is_away_still_stops_in_bounded_time(
    oms: OmsClient, stack: Stack, broker_proxy: FaultProxy, healed: None
) -> None:
    """An orchestrator's SIGTERM during an outage ends the process, not waits for the
    broker: a robust channel would otherwise wait for it to cancel the consumer."""
    replicas = stack.replica_names("shipping")
    with broker_proxy.cut_off():
        await eventually(
            lambda: readiness(oms, "shipping"),
            lambda answer: answer[1]["broker"] is False,
            20,
            "shipping to notice the broker is gone",
        )
        started = time.monotonic()
        codes = stack.stop_together(replicas, timeout=40)
        took = time.monotonic() - started
    assert set(codes.values()) <= {0, -signal.SIGTERM}, codes  # not killed after 40 s
    assert took < 30, took
    # `healed` starts them again with the broker back.


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
        order_id = await held_in_the_outbox(oms, db, product["sku"])
        assert time.monotonic() - started < 2, "taking an order does not wait for the broker"
        assert (await oms.order(order_id))["status"] == "pending"
    # Healed: what was held flows on through the same connections.
    await sent_on(oms, db, order_id)


# -- the database away ---------------------------------------------------------------------


async def orders_go_through_again(oms: OmsClient, stack: Stack, sku: str) -> None:
    """Once every process is ready again, an order is taken and fulfilled."""
    await stack.wait_ready(timeout=60)
    accepted = await eventually(
        lambda: oms.place_order([(sku, 1)]),
        lambda r: r.status_code == 202,
        30,
        "an accepted order",
    )
    await oms.wait_for_order(accepted.json()["id"], "fulfilling", timeout=60)


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
    await orders_go_through_again(oms, stack, product["sku"])


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
    await orders_go_through_again(oms, stack, product["sku"])
