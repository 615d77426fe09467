"""Records every event the services publish during the e2e run, as a subscriber
would see it, so that tests/e2e/test_event_contracts.py can check each one against
the published catalog once the other e2e tests have run."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aio_pika
import pytest

from oms_contracts import EVENTS_EXCHANGE
from oms_devtools.stack import Stack

from .helpers import EventRecorder

RUN_LAST = "run_last"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{RUN_LAST}: run after every other test of the session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Stable sort: the marked tests keep their own order, after all others.
    items.sort(key=lambda item: item.get_closest_marker(RUN_LAST) is not None)


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


@pytest.fixture(autouse=True)
def _record_events(request: pytest.FixtureRequest) -> None:
    """Starts the recorder with the first test that brings the stack up; tests that
    need no stack do not start one for it."""
    if "stack" in request.fixturenames:
        request.getfixturevalue("event_recorder")
