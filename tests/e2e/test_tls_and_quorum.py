"""A second, small stack: every process (the gateway simulator too) serves HTTPS with
a certificate of a throwaway CA made here, the payment service checks the gateway's
against that CA, and every queue is a quorum queue. On it: an order end to end, a
redelivery after a lost acknowledgement, and a message retried through the delay
queues until it is dead-lettered."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import httpx
import pytest
import trustme

from oms_contracts import COMMANDS_EXCHANGE, Envelope
from oms_contracts import inventory as inventory_msgs
from oms_devtools.client import OmsClient, eventually
from oms_devtools.stack import GATEWAY, SERVICES, Stack, TlsFiles
from oms_payment.gateway.base import Approved, Unavailable
from oms_payment.gateway.http import HttpPaymentGateway
from oms_runtime.db import libpq_url

from .own_stack import stack_of_its_own
from .scenarios import restock_whose_ack_is_lost

# It starts a second stack of its own: the replica pass would only repeat it.
pytestmark = [pytest.mark.e2e, pytest.mark.single_pass]


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA that exists only for this run, and a certificate it signed for 127.0.0.1."""
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(directory / "cert.pem", directory / "key.pem", directory / "ca.pem")
    issued.cert_chain_pems[0].write_to_path(str(files.cert_file))
    for extra in issued.cert_chain_pems[1:]:
        extra.write_to_path(str(files.cert_file), append=True)
    issued.private_key_pem.write_to_path(str(files.key_file))
    ca.cert_pem.write_to_path(str(files.ca_file))
    return files


@pytest.fixture(scope="module")
async def secure_stack(
    stack: Stack, tls_files: TlsFiles, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """HTTPS everywhere and quorum queues (the session's stack keeps classic ones)."""
    async with stack_of_its_own(
        stack,
        "tls",
        Path(tmp_path_factory.mktemp("secure-service-logs")),
        tls=tls_files,
        env={"OMS_QUEUE_TYPE": "quorum"},
    ) as secure:
        yield secure


@pytest.fixture
async def secure_oms(secure_stack: Stack) -> AsyncIterator[OmsClient]:
    client = OmsClient(
        {name: secure_stack.url(name) for name in (*SERVICES, GATEWAY)},
        jwt_secret=secure_stack.env["OMS_JWT_SECRET"],
        carrier_secret=secure_stack.env["OMS_CARRIER_SECRET"],
        customer=f"secure-{uuid.uuid4().hex[:8]}",
        verify=secure_stack.verify(),
    )
    yield client
    await client.aclose()


@pytest.fixture
async def secure_db(secure_stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(libpq_url(secure_stack.database_url))
    yield connection
    await connection.close()


def queue_types(amqp_url: str) -> dict[str, str]:
    vhost = urlsplit(amqp_url).path.lstrip("/")
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "type"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows = [line.split("\t") for line in listed.stdout.splitlines()[1:] if "\t" in line]
    return {name: kind for name, kind in rows if name.startswith("oms.")}


async def test_an_order_goes_end_to_end_over_https_and_quorum_queues(
    secure_stack: Stack, secure_oms: OmsClient
) -> None:
    oms = secure_oms
    product = await oms.create_product(on_hand=3, unit_price=1500)
    placed = await oms.place_order([(product["sku"], 2)])
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["id"]
    await oms.wait_for_order(order_id, "fulfilling", timeout=30)
    shipment = await oms.shipment_of(order_id)
    assert shipment is not None
    assert (await oms.dispatch(shipment["id"])).status_code == 200
    await oms.wait_for_order(order_id, "shipped", timeout=30)
    # Authorized and captured by the payment service over HTTPS, checking the
    # simulator's certificate against the run's CA.
    payment = await eventually(
        lambda: oms.payment_of(order_id),
        lambda p: p is not None and p["captured_amount"] == 3000,
        30,
        "the capture",
    )
    calls = await oms.http.get(
        f"{oms.urls['payment']}/payments/{payment['id']}/gateway-calls", headers=oms.admin()
    )
    assert [(c["operation"], c["status_code"]) for c in calls.json()] == [
        ("authorize", 201),
        ("capture", 200),
    ]

    kinds = await asyncio.to_thread(queue_types, secure_stack.amqp_url)
    for service in SERVICES:
        assert kinds[f"oms.{service}"] == "quorum", kinds
        assert kinds[f"oms.{service}.dead"] == "quorum", kinds
        assert kinds[f"oms.{service}.retry.200ms"] == "quorum", kinds

    # It is really TLS, with a certificate only the run's CA vouches for.
    for name in (*SERVICES, GATEWAY):
        url = secure_stack.url(name)
        assert url.startswith("https://")
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            async with httpx.AsyncClient(verify=ssl.create_default_context()) as stranger:
                await stranger.get(f"{url}/healthz")
        plain = url.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):
            async with httpx.AsyncClient() as unencrypted:
                await unencrypted.get(f"{plain}/healthz")


async def test_a_lost_ack_is_redelivered_from_a_quorum_queue_and_absorbed(
    secure_stack: Stack, secure_oms: OmsClient, secure_db: asyncpg.Connection
) -> None:
    assert secure_stack.broker_proxy is not None
    try:
        await restock_whose_ack_is_lost(
            secure_oms, secure_stack, secure_db, secure_stack.broker_proxy, secure_stack.amqp_url
        )
    finally:
        secure_stack.broker_proxy.restore()


async def test_a_failing_message_goes_through_the_quorum_delay_queues_to_the_dead_letters(
    secure_stack: Stack, secure_oms: OmsClient
) -> None:
    """Every attempt of a restock fails (its database is cut off): after the retries,
    each parked in a delay queue and let back by it, it is dead-lettered."""
    assert secure_stack.database_proxy is not None
    product = await secure_oms.create_product(on_hand=1)
    command = inventory_msgs.Restock(sku=product["sku"], quantity=2, reference="ASN-dead")
    envelope = Envelope.wrap(command)
    connection = await aio_pika.connect(secure_stack.amqp_url)
    async with connection:
        channel = await connection.channel()
        dead = await channel.declare_queue("oms.inventory.dead", passive=True)
        with secure_stack.database_proxy.cut_off():
            exchange = await channel.get_exchange(COMMANDS_EXCHANGE)
            await exchange.publish(
                aio_pika.Message(
                    envelope.model_dump_json().encode(), message_id=str(envelope.message_id)
                ),
                routing_key=command.routing_key,
            )

            async def dead_letter() -> aio_pika.abc.AbstractIncomingMessage | None:
                found, others = None, []
                while (message := await dead.get(no_ack=False, fail=False)) is not None:
                    if message.message_id == str(envelope.message_id):
                        found = message
                    else:
                        others.append(message)
                for other in others:  # not this test's: left where they were
                    await other.nack(requeue=True)
                return found

            parked = await eventually(dead_letter, lambda m: True, 30, "the dead letter")
            await parked.ack()
    headers = parked.headers or {}
    # The first attempt and one per delay (0.2, 0.5, 1 s), each back through a delay
    # queue's dead-lettering.
    assert headers["x-oms-attempt"] == 4
    assert headers["x-oms-error"]
    assert headers["x-oms-original-routing-key"] == "inventory.restock"
    assert (await secure_oms.product(product["sku"]))["on_hand"] == 1


async def test_the_payment_services_gateway_client_trusts_only_the_ca_it_is_given(
    secure_stack: Stack, tls_files: TlsFiles
) -> None:
    async def authorize(ca_file: str | None) -> tuple[object, str | None]:
        gateway = HttpPaymentGateway(secure_stack.url(GATEWAY), 5.0, ca_file=ca_file)
        try:
            result, call = await gateway.authorize(
                idempotency_key=str(uuid.uuid4()),
                amount=100,
                currency="EUR",
                token="tok_ok",
                reference=f"tls-{uuid.uuid4().hex[:8]}",
            )
        finally:
            await gateway.close()
        return result, call.error

    approved, error = await authorize(str(tls_files.ca_file))
    assert isinstance(approved, Approved), error
    refused, error = await authorize(None)  # the system's CAs never signed it
    assert isinstance(refused, Unavailable)
    assert error is not None and "CERTIFICATE_VERIFY_FAILED" in error
