"""Shared fixtures: a throwaway database and RabbitMQ vhost for the whole session,
and the real services started as processes against them.

The suite never touches `make run`'s database (`oms`) or vhost (`/`), uses its own
ports, and removes what it created when it ends. The services reach Postgres and
RabbitMQ through fault proxies of the session (`database_proxy`, `broker_proxy`), so
outage tests take the servers away from them without stopping the servers; the
tests' own connections go straight to the servers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from oms_devtools import infra
from oms_devtools.client import OmsClient
from oms_devtools.faultproxy import FaultProxy
from oms_devtools.stack import SERVICES, Stack
from oms_runtime.db import libpq_url

JWT_SECRET = "test-jwt-secret-that-is-long-enough-for-hs256"
CARRIER_SECRET = "test-carrier-secret"
RUN_ID = uuid.uuid4().hex[:8]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The end-to-end files first: they take the longest, so the parallel test
    processes (pytest-xdist, a file each) start them early and fill the end with the
    short ones, instead of one process finishing a long file while the other idles."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)


@pytest.fixture(scope="session")
def test_database_url() -> str:
    base = os.environ.get("OMS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")
    return f"{base.rstrip('/')}/oms_test_{RUN_ID}"


@pytest.fixture(scope="session")
def test_amqp_url() -> Iterator[str]:
    vhost = f"oms_test_{RUN_ID}"
    infra.create_vhost(vhost)
    base = os.environ.get("OMS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
    yield f"{base.rstrip('/')}/{vhost}"
    infra.delete_vhost(vhost)


@pytest.fixture(scope="session")
async def migrated_database(test_database_url: str) -> AsyncIterator[str]:
    await infra.recreate_database(test_database_url)
    infra.migrate_all({"OMS_DATABASE_URL": test_database_url})
    yield test_database_url
    await infra.drop_database(test_database_url)


def _proxy_for(url: str, name: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy.in_front_of(url, name=name).start()
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture(scope="session")
def database_proxy(test_database_url: str) -> Iterator[FaultProxy]:
    """Between the stack's services and Postgres."""
    yield from _proxy_for(test_database_url, "postgres")


@pytest.fixture(scope="session")
def broker_proxy(test_amqp_url: str) -> Iterator[FaultProxy]:
    """Between the stack's services and RabbitMQ."""
    yield from _proxy_for(test_amqp_url, "rabbitmq")


@pytest.fixture(scope="session")
async def stack(
    migrated_database: str,
    test_amqp_url: str,
    database_proxy: FaultProxy,
    broker_proxy: FaultProxy,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    log_dir = Path(tmp_path_factory.mktemp("service-logs"))
    # OMS_E2E_REPLICAS=2 runs every service twice, competing for its queue.
    replicas = int(os.environ.get("OMS_E2E_REPLICAS", "1"))
    running = Stack.on_free_ports(
        database_url=migrated_database,
        amqp_url=test_amqp_url,
        log_dir=log_dir,
        replicas=replicas,
        database_proxy=database_proxy,
        broker_proxy=broker_proxy,
        env={
            "OMS_JWT_SECRET": JWT_SECRET,
            "OMS_CARRIER_SECRET": CARRIER_SECRET,
            "OMS_RETRY_DELAYS": "0.2,0.5,1",
            "OMS_GATEWAY_TIMEOUT_SECONDS": "1",
            "OMS_GATEWAY_RETRY_BASE_DELAY": "0.1",
            "OMS_RELAY_POLL_INTERVAL": "0.5",
            "OMS_ACCESS_LOG": "false",
            "OMS_DB_POOL_SIZE": "4",
            # A database behind a partition fails requests after this, not never.
            "OMS_DB_TIMEOUT_SECONDS": "5",
            # Short saga deadlines so the failure tests do not wait long; the payment
            # one outlasts the gateway retries above (4 attempts of 1 s plus backoff).
            "OMS_DEADLINE_RESERVATION_SECONDS": "5",
            "OMS_DEADLINE_PAYMENT_SECONDS": "20",
            "OMS_DEADLINE_SHIPMENT_SECONDS": "5",
            "OMS_DEADLINE_DISPATCH_SECONDS": "600",
            "OMS_DEADLINE_SETTLEMENT_SECONDS": "10",
            "OMS_DEADLINE_RETRY_SECONDS": "1",
            "OMS_DEADLINE_MAX_ATTEMPTS": "3",
            "OMS_SWEEP_INTERVAL_SECONDS": "0.2",
            "OMS_INVENTORY_CHECK_SECONDS": "0.5",
            # Tests make the gateway fail on purpose; the breaker gets its own test.
            "OMS_GATEWAY_BREAKER_FAILURES": "1000",
        },
    )
    try:
        async with running.running():
            yield running
    finally:
        print(f"\nservice logs: {log_dir}")


@pytest.fixture
async def db(migrated_database: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the test database, to check what was (not) written."""
    connection = await asyncpg.connect(libpq_url(migrated_database))
    yield connection
    await connection.close()


@pytest.fixture
def customer() -> str:
    """A customer of the test's own: the per-customer rate limit, order lists and
    idempotency keys of one test never meet another's."""
    return f"customer-{uuid.uuid4().hex[:8]}"


def client_of(stack: Stack, customer: str) -> OmsClient:
    """A client of the running system, acting as `customer` (or as staff)."""
    return OmsClient(
        {name: stack.url(name) for name in (*SERVICES, "gateway")},
        jwt_secret=JWT_SECRET,
        carrier_secret=CARRIER_SECRET,
        customer=customer,
    )


@pytest.fixture
async def oms(stack: Stack, customer: str) -> AsyncIterator[OmsClient]:
    """A client of the running system, acting as this test's own `customer`."""
    client = client_of(stack, customer)
    yield client
    await client.aclose()
