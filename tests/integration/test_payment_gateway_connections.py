"""The payment service's gateway client over real HTTP: a connection left idle is not
reused once the gateway may be closing it.

A gateway closes an idle keep-alive connection after its own timeout; a call that
goes out on that connection at that moment gets no answer and costs an attempt
(a retry, an audit record), though the gateway is fine. The client drops idle
connections first (`OMS_GATEWAY_KEEPALIVE_SECONDS`). The gateway here answers the
first request of each connection and closes the connection on any later one, as the
race ends from the client's side."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from oms_payment.domain.model import Approved
from oms_payment.gateway.base import Unavailable
from oms_payment.gateway.http import HttpPaymentGateway

from .gateway_stub import approve, read_request, serving

pytestmark = pytest.mark.integration

# The client keeps an idle connection this long in the first case; the calls are this
# far apart (the idle spell is the scenario, not a wait for something).
KEEPALIVE = 0.2
IDLE = 0.5


async def _one_request_per_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await read_request(reader)
    await approve(writer)
    # A later request on this connection finds it closing: no answer.
    await reader.readuntil(b"\r\n\r\n")


@pytest.fixture
async def gateway_url() -> AsyncIterator[str]:
    async with serving(_one_request_per_connection) as url:
        yield url


async def _authorize(gateway: HttpPaymentGateway, key: str) -> object:
    result, _ = await gateway.authorize(
        idempotency_key=key, amount=1000, currency="EUR", token="tok_ok", reference="p-1"
    )
    return result


@pytest.mark.parametrize(
    ("keepalive_seconds", "second_call"),
    [
        (KEEPALIVE, Approved),
        # What the setting prevents: the idle connection is reused as the gateway
        # closes it, and the call is lost.
        (5.0, Unavailable),
    ],
    ids=["dropped-before-the-gateway-closes-it", "kept-as-long-as-the-gateway"],
)
async def test_a_call_after_an_idle_spell_goes_out_on_a_fresh_connection(
    gateway_url: str, keepalive_seconds: float, second_call: type
) -> None:
    gateway = HttpPaymentGateway(gateway_url, 2.0, keepalive_seconds=keepalive_seconds)
    try:
        assert isinstance(await _authorize(gateway, "first"), Approved)
        await asyncio.sleep(IDLE)  # the idle spell itself, not a wait for something
        assert isinstance(await _authorize(gateway, "second"), second_call)
    finally:
        await gateway.close()
