"""Dead letters against a real RabbitMQ: the `oms-deadletters` CLI and the admin
HTTP endpoints every service mounts (list, show, replay, discard)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace

import aio_pika
import httpx
import pytest
from fastapi import FastAPI

from oms_contracts import Envelope
from oms_contracts import inventory as inventory_msgs
from oms_runtime.auth import mint_token
from oms_runtime.deadletters import DeadLetter, dead_letter_router, key_of_body
from oms_runtime.messaging.broker import Broker
from oms_runtime.messaging.consumer import ATTEMPT_HEADER, ERROR_HEADER, dead_letter_queue_name
from oms_runtime.problems import install_problem_handlers
from oms_runtime.settings import ServiceSettings

pytestmark = pytest.mark.integration

SECRET = "test-secret-for-the-dead-letter-endpoints-0123456789"
POISON = b"\xff not json at all"


def cli(amqp_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oms_runtime.deadletters", "--amqp-url", amqp_url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def park(
    amqp_url: str,
    queue: str,
    body: bytes,
    message_id: str | None = None,
    with_work_queue: bool = True,
) -> None:
    """A dead letter as a relay of old, or a hand, left it: no type or correlation id
    in the AMQP properties, only (maybe) in the body."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        if with_work_queue:
            await channel.declare_queue(queue, durable=True)
        await channel.declare_queue(dead_letter_queue_name(queue), durable=True)
        await channel.default_exchange.publish(
            aio_pika.Message(
                body,
                message_id=message_id,
                headers={ATTEMPT_HEADER: 4, ERROR_HEADER: "RuntimeError('boom')"},
            ),
            routing_key=dead_letter_queue_name(queue),
        )


async def work_queue_bodies(amqp_url: str, queue: str) -> list[bytes]:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        work = await channel.declare_queue(queue, durable=True)
        found = []
        while (message := await work.get(no_ack=True, fail=False, timeout=5)) is not None:
            found.append(message.body)
        return found


def release_stock(order_id: str) -> Envelope:
    return Envelope.wrap(
        inventory_msgs.ReleaseStock(order_id=order_id, reason="test"), correlation_id=order_id
    )


@pytest.fixture
def queue() -> str:
    return f"oms.deadletter-test.{uuid.uuid4().hex[:8]}"


async def test_the_cli_lists_type_and_order_from_the_body_when_the_headers_lack_them(
    plumbing_amqp_url: str, queue: str
) -> None:
    envelope = release_stock("o-41")
    await park(
        plumbing_amqp_url, queue, envelope.model_dump_json().encode(), str(envelope.message_id)
    )
    listed = await asyncio.to_thread(cli, plumbing_amqp_url, "list", queue)
    assert listed.returncode == 0, listed.stderr
    [entry] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert entry["type"] == "inventory.release_stock"
    assert entry["correlation_id"] == envelope.correlation_id == "o-41"
    assert entry["message_id"] == entry["key"] == str(envelope.message_id)
    assert entry["attempts"] == 4 and "boom" in entry["error"]


async def test_the_cli_discards_a_poison_message_and_keeps_the_others(
    plumbing_amqp_url: str, queue: str
) -> None:
    kept = release_stock("o-42")
    await park(plumbing_amqp_url, queue, POISON)
    await park(plumbing_amqp_url, queue, kept.model_dump_json().encode(), str(kept.message_id))
    listed = await asyncio.to_thread(cli, plumbing_amqp_url, "list", queue)
    entries = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(e["type"], e["correlation_id"]) for e in entries] == [
        (None, None),
        ("inventory.release_stock", "o-42"),
    ]
    keys = [e["key"] for e in entries]
    assert keys[1] == str(kept.message_id)

    discarded = await asyncio.to_thread(cli, plumbing_amqp_url, "discard", queue, keys[0])
    assert discarded.returncode == 0, discarded.stderr
    again = await asyncio.to_thread(cli, plumbing_amqp_url, "list", queue)
    assert [json.loads(line)["key"] for line in again.stdout.splitlines()] == [keys[1]]
    missing = await asyncio.to_thread(cli, plumbing_amqp_url, "discard", queue, keys[0])
    assert missing.returncode == 1 and "no such dead letter" in missing.stderr


@pytest.fixture
async def admin_api(plumbing_amqp_url: str, queue: str) -> AsyncIterator[httpx.AsyncClient]:
    broker = Broker(plumbing_amqp_url, "dead-letter-api-test")
    await broker.connect()
    app = FastAPI()
    app.state.settings = ServiceSettings(jwt_secret=SECRET)
    install_problem_handlers(app)
    runtime = SimpleNamespace(broker=broker, consumer=SimpleNamespace(queue_name=queue))
    app.include_router(dead_letter_router(runtime))  # type: ignore[arg-type]
    token = mint_token(SECRET, "ops", "admin")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://service.test",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client
    await broker.close()


async def test_the_admin_endpoints_list_show_replay_and_discard(
    admin_api: httpx.AsyncClient, plumbing_amqp_url: str, queue: str
) -> None:
    replayed = release_stock("o-43")
    await park(
        plumbing_amqp_url, queue, replayed.model_dump_json().encode(), str(replayed.message_id)
    )
    await park(plumbing_amqp_url, queue, POISON)

    listing = (await admin_api.get("/admin/dead-letters")).json()
    assert listing["queue"] == f"{queue}.dead"
    assert [(d["type"], d["correlation_id"]) for d in listing["items"]] == [
        ("inventory.release_stock", "o-43"),
        (None, None),
    ]
    assert listing["items"][0]["key"] == str(replayed.message_id)
    poison_key = listing["items"][1]["key"]
    shown = (await admin_api.get(f"/admin/dead-letters/{replayed.message_id}")).json()
    assert shown["body"]["data"]["order_id"] == "o-43"
    assert shown["headers"][ERROR_HEADER] == "RuntimeError('boom')"
    poison = (await admin_api.get(f"/admin/dead-letters/{poison_key}")).json()
    assert poison["body"].endswith("not json at all")

    replay = await admin_api.post(f"/admin/dead-letters/{replayed.message_id}/replay")
    assert replay.status_code == 200 and replay.json()["outcome"] == "replayed"
    assert await work_queue_bodies(plumbing_amqp_url, queue) == [
        replayed.model_dump_json().encode()
    ]
    discard = await admin_api.post(f"/admin/dead-letters/{poison_key}/discard")
    assert discard.status_code == 200 and discard.json()["outcome"] == "discarded"
    assert (await admin_api.get("/admin/dead-letters")).json()["items"] == []
    gone = await admin_api.post(f"/admin/dead-letters/{poison_key}/replay")
    assert gone.status_code == 404
    assert gone.json()["type"] == "/problems/dead-letter-not-found"


async def test_a_replay_the_broker_refuses_leaves_the_dead_letter_in_place(
    admin_api: httpx.AsyncClient, plumbing_amqp_url: str, queue: str
) -> None:
    """No work queue to go back to (the service never started here): 503, kept."""
    envelope = release_stock("o-44")
    await park(
        plumbing_amqp_url,
        queue,
        envelope.model_dump_json().encode(),
        str(envelope.message_id),
        with_work_queue=False,
    )
    refused = await admin_api.post(f"/admin/dead-letters/{envelope.message_id}/replay")
    assert refused.status_code == 503
    assert refused.json()["type"] == "/problems/replay-failed"
    listing = (await admin_api.get("/admin/dead-letters")).json()
    assert [d["key"] for d in listing["items"]] == [str(envelope.message_id)]


async def test_the_admin_endpoints_are_for_admins_only(admin_api: httpx.AsyncClient) -> None:
    customer = mint_token(SECRET, "alice", "customer")
    response = await admin_api.get(
        "/admin/dead-letters", headers={"Authorization": f"Bearer {customer}"}
    )
    assert response.status_code == 403
    anonymous = await admin_api.get("/admin/dead-letters", headers={"Authorization": ""})
    assert anonymous.status_code == 401


def test_a_message_that_came_without_an_id_is_known_by_a_digest_of_its_body() -> None:
    """Clients other than aio-pika (a management UI, a script) may send none."""
    bare = SimpleNamespace(message_id=None, type=None, correlation_id=None, headers={}, body=POISON)
    letter = DeadLetter.of(bare)  # type: ignore[arg-type]
    assert letter.key == key_of_body(POISON) and letter.key.startswith("sha256:")
    assert letter.detail()["body"].endswith("not json at all")
