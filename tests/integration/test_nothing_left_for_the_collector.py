"""What every message and request goes through leaves nothing for Python's cyclic
garbage collector: a finished unit of work, everything it read and wrote, and a call
to the payment gateway are freed by reference counting as soon as nobody holds them.

When a unit of work formed a reference cycle (it holds its repositories; they held
it back), and every gateway call did (httpx's response and its stream), all of their
objects waited for the collector: measured at max rate, a young collection every
second or so in every service, 9-20 ms of CPU each, ~5 % of each service's CPU, and
pauses of tens of ms in the saga's latency (README, Benchmarks). These tests build
each service's own unit of work as its process does, and call a gateway over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from oms_inventory.main import create_app as create_inventory
from oms_inventory.settings import InventorySettings
from oms_order.main import create_app as create_order
from oms_order.settings import OrderSettings
from oms_payment.domain.model import Approved
from oms_payment.gateway.http import HttpPaymentGateway
from oms_payment.main import create_app as create_payment
from oms_payment.settings import PaymentSettings
from oms_runtime.messaging.unit_of_work import UnitOfWorkFactory
from oms_shipping.main import create_app as create_shipping
from oms_shipping.settings import ShippingSettings

from .gateway_stub import approve, read_request, serving

pytestmark = pytest.mark.integration

SERVICES: dict[str, Callable[[str], FastAPI]] = {
    "order": lambda url: create_order(OrderSettings(database_url=url)),
    "inventory": lambda url: create_inventory(InventorySettings(database_url=url)),
    "payment": lambda url: create_payment(PaymentSettings(database_url=url)),
    "shipping": lambda url: create_shipping(ShippingSettings(database_url=url)),
}


@contextlib.contextmanager
def collector_off() -> Iterator[None]:
    """Only reference counting frees anything meanwhile."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture(params=sorted(SERVICES))
async def units_of_work(
    request: pytest.FixtureRequest, migrated_database: str
) -> AsyncIterator[UnitOfWorkFactory[Any]]:
    """The service's own unit-of-work factory, as its process builds it."""
    app = SERVICES[request.param](migrated_database)
    yield app.state.unit_of_work
    await app.state.runtime.engine.dispose()


async def test_a_unit_of_work_of_its_own_is_freed_once_done(
    units_of_work: UnitOfWorkFactory[Any],
) -> None:
    with collector_off():
        async with units_of_work() as uow:
            await uow.commit()
        finished = weakref.ref(uow)
        del uow
        assert finished() is None


async def test_the_units_of_work_of_a_batch_are_freed_once_done(
    units_of_work: UnitOfWorkFactory[Any],
) -> None:
    with collector_off():
        async with units_of_work.shared_transaction() as shared:
            await shared.begin()
            async with units_of_work.within(shared) as first:
                await first.commit()
            async with units_of_work.within(shared) as second:
                await second.commit()
            await shared.commit()
        finished = [weakref.ref(first), weakref.ref(second), weakref.ref(shared)]
        del first, second, shared
        assert [ref() for ref in finished] == [None, None, None]


async def _approve_every_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    while True:
        await read_request(reader)
        await approve(writer)


@pytest.fixture
async def gateway() -> AsyncIterator[HttpPaymentGateway]:
    async with serving(_approve_every_request) as url:
        gateway = HttpPaymentGateway(url, timeout_seconds=5)
        yield gateway
        await gateway.close()


async def test_gateway_calls_leave_nothing_for_the_collector(gateway: HttpPaymentGateway) -> None:
    async def authorize(key: str) -> object:
        result, _ = await gateway.authorize(
            idempotency_key=key, amount=1000, currency="EUR", token="tok_ok", reference="p-1"
        )
        return result

    assert isinstance(await authorize("warm-up"), Approved)  # the connection is pooled
    with collector_off():
        results = [await authorize(f"call-{n}") for n in range(20)]
        del results
        assert gc.collect() == 0
