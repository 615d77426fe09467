"""Records every event the services publish during the e2e run, as a subscriber
would see it, and when the session ends (each pytest-xdist worker has a session and a
stack of its own) checks what every run must leave true (tests/e2e/run_checks.py):
each event matched its published schema, and the books of the services agree."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import pytest

from oms_contracts import EVENTS_EXCHANGE
from oms_devtools.faultproxy import FaultProxy
from oms_devtools.stack import Stack
from oms_runtime.db import libpq_url

from ..conftest import client_of
from .helpers import EventRecorder, a_customer
from .run_checks import agree_once_settled, books_disagreements, contract_violations

# The last test's messages may still be in flight when the session ends.
SETTLE_SECONDS = 30


@pytest.fixture(scope="session")
async def event_recorder(stack: Stack, test_amqp_url: str) -> AsyncIterator[EventRecorder]:
    """An exclusive queue bound to every routing key of the events exchange, for the
    rest of the session (the stack is up, so the services declared the exchange)."""
    recorder = EventRecorder()
    connection = await aio_pika.connect_robust(
        test_amqp_url, client_properties={"connection_name": "e2e-event-recorder"}
    )
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(exchange, routing_key="#")
    await queue.consume(recorder.on_message, no_ack=True)
    yield recorder
    await connection.close()


@pytest.fixture(scope="session")
async def checked_when_the_session_ends(
    stack: Stack,
    event_recorder: EventRecorder,
    migrated_database: str,
    database_proxy: FaultProxy,
    broker_proxy: FaultProxy,
) -> AsyncIterator[None]:
    """After this process's last test, whatever the tests did: every event published
    matched its schema, and once the system settles, the books agree. A failure shows
    as an error at the teardown of the last test."""
    yield
    # A test that failed halfway may have left a server cut off: let the system settle.
    database_proxy.restore()
    broker_proxy.restore()
    assert contract_violations(list(event_recorder.events)) == []
    oms = client_of(stack, a_customer("books"))
    db = await asyncpg.connect(libpq_url(migrated_database))
    try:
        await agree_once_settled(
            lambda: books_disagreements(db, oms),
            "the books of the services to agree at the end of the run",
            SETTLE_SECONDS,
        )
    finally:
        await db.close()
        await oms.aclose()


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


@pytest.fixture(autouse=True)
def _record_and_check_the_run(request: pytest.FixtureRequest) -> None:
    """Starts the recorder and the end-of-session check with the first test that brings
    the stack up; tests that need no stack do not start one for them."""
    if "stack" in request.fixturenames:
        request.getfixturevalue("checked_when_the_session_ends")
