"""Dead letters: look at, replay and discard the messages a service gave up on.

From a shell, `oms-deadletters` (in `.venv/bin/`):

    oms-deadletters list oms.order                 # what is parked, with its error
    oms-deadletters show oms.order KEY             # one message, whole
    oms-deadletters replay oms.order KEY           # back to the work queue
    oms-deadletters replay oms.order --all
    oms-deadletters discard oms.order KEY          # drop a poison message for good

Over HTTP, every service mounts the same operations for its own queue (admin):
`GET /admin/dead-letters`, `GET /admin/dead-letters/{key}`,
`POST /admin/dead-letters/{key}/replay`, `POST /admin/dead-letters/{key}/discard`.

KEY is the message id, or `sha256:<first 16 hex digits of the body's SHA-256>` for a
message that came without one (a poison message published by hand, say).
Every service's dead-letter queue is `<its queue>.dead` (oms.order.dead, ...).
Replaying puts the message back on the service's work queue with its retry count
reset; the service's inbox still drops it if it was, after all, handled before.
Discarding acknowledges it after logging it whole (WARNING `dead letter discarded`),
so what was thrown away can still be read in the logs.
The broker is taken from OMS_AMQP_URL (or --amqp-url).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel

from oms_runtime.auth import admin_principal
from oms_runtime.messaging.consumer import ATTEMPT_HEADER, ERROR_HEADER, dead_letter_queue_name
from oms_runtime.problems import Problem
from oms_runtime.service import ServiceRuntime
from oms_runtime.settings import ServiceSettings

log = logging.getLogger("oms.deadletters")

# A dead-letter queue is read whole to find one message; past this many the rest
# stays unseen (and the listing says so) rather than filling the process's memory.
MAX_SCANNED = 10_000


@dataclass(frozen=True)
class DeadLetter:
    """One parked message, with what the envelope in its body says when the AMQP
    properties lack it (messages re-published by hand, or by older relays)."""

    key: str
    message_id: str | None
    type: str | None
    correlation_id: str | None
    attempts: int | None
    error: str | None
    headers: dict[str, Any]
    body: bytes

    @classmethod
    def of(cls, message: AbstractIncomingMessage) -> DeadLetter:
        headers = dict(message.headers or {})
        envelope = _envelope_fields(message.body)
        message_id = message.message_id or _text(envelope.get("message_id"))
        attempts = headers.get(ATTEMPT_HEADER)
        return cls(
            key=message_id or key_of_body(message.body),
            message_id=message_id,
            type=message.type or _text(envelope.get("type")),
            correlation_id=message.correlation_id or _text(envelope.get("correlation_id")),
            attempts=attempts if isinstance(attempts, int) else None,
            error=_text(headers.get(ERROR_HEADER)),
            headers=headers,
            body=message.body,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "message_id": self.message_id,
            "type": self.type,
            "correlation_id": self.correlation_id,
            "attempts": self.attempts,
            "error": self.error,
        }

    def detail(self) -> dict[str, Any]:
        try:
            body: Any = json.loads(self.body)
        except ValueError:
            body = self.body.decode("utf-8", errors="replace")
        return {
            **self.summary(),
            "headers": {k: _jsonable(v) for k, v in self.headers.items()},
            "body": body,
        }


def key_of_body(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()[:16]


def _envelope_fields(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) and value else None


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class ReplayFailed(Exception):
    """The broker did not take the copy; the dead letter stays where it was."""


class DeadLetterQueue:
    """The dead letters of one service's work queue, read through `channel`.

    Reading takes every parked message without acknowledging it; whatever is not
    replayed or discarded goes back to the queue when the channel closes (or is
    rejected with requeue), so nothing is lost if the reader stops half-way. While
    one reader holds them, a second one sees the queue short of those messages.
    """

    def __init__(self, channel: AbstractChannel, work_queue: str) -> None:
        self._channel = channel
        self.work_queue = work_queue
        self.name = dead_letter_queue_name(work_queue)

    async def _take_all(self) -> list[tuple[AbstractIncomingMessage, DeadLetter]]:
        # Passive: the queue is the service's, with its type and arguments (classic or
        # quorum); declaring it here with others would be refused.
        dead = await self._channel.declare_queue(self.name, passive=True)
        taken: list[tuple[AbstractIncomingMessage, DeadLetter]] = []
        while len(taken) < MAX_SCANNED:
            message = await dead.get(no_ack=False, fail=False, timeout=5)
            if message is None:
                break
            taken.append((message, DeadLetter.of(message)))
        return taken

    async def _put_back(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        for message in messages:
            await message.reject(requeue=True)

    async def _choose(
        self, wanted: Callable[[DeadLetter], bool]
    ) -> list[tuple[AbstractIncomingMessage, DeadLetter]]:
        """Take the wanted messages; the others go back to the queue at once."""
        taken = await self._take_all()
        await self._put_back([m for m, letter in taken if not wanted(letter)])
        return [(m, letter) for m, letter in taken if wanted(letter)]

    async def letters(self) -> list[DeadLetter]:
        taken = await self._take_all()
        await self._put_back([m for m, _ in taken])
        return [letter for _, letter in taken]

    async def find(self, key: str) -> DeadLetter | None:
        taken = await self._take_all()
        await self._put_back([m for m, _ in taken])
        return next((letter for _, letter in taken if letter.key == key), None)

    async def replay(self, keys: set[str] | None) -> list[DeadLetter]:
        """Back to the work queue (every one when `keys` is None); returns those moved."""
        chosen = await self._choose(lambda letter: keys is None or letter.key in keys)
        for done, (message, letter) in enumerate(chosen):
            headers = dict(message.headers or {})
            headers[ATTEMPT_HEADER] = 0
            try:
                await self._channel.default_exchange.publish(
                    aio_pika.Message(
                        message.body,
                        message_id=message.message_id,
                        type=message.type,
                        correlation_id=message.correlation_id,
                        content_type=message.content_type,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        headers=headers,
                    ),
                    routing_key=self.work_queue,
                )
            except Exception as exc:  # e.g. the work queue does not exist (yet)
                await self._put_back([m for m, _ in chosen[done:]])
                raise ReplayFailed(
                    f"could not put {letter.key} back on {self.work_queue}: {exc}"
                ) from exc
            await message.ack()  # only once the broker confirmed the copy
            log.info(
                "dead letter replayed",
                extra={"queue": self.work_queue, **letter.summary()},
            )
        return [letter for _, letter in chosen]

    async def discard(self, key: str) -> DeadLetter | None:
        """Drop the message (and any duplicate of it) for good, after logging it whole."""
        chosen = await self._choose(lambda letter: letter.key == key)
        for message, letter in chosen:
            log.warning(
                "dead letter discarded",
                extra={"queue": self.work_queue, "dead_letter": letter.detail()},
            )
            await message.ack()
        return chosen[0][1] if chosen else None


# -- HTTP ------------------------------------------------------------------------


class DeadLetterSummary(BaseModel):
    key: str
    message_id: str | None
    type: str | None
    correlation_id: str | None
    attempts: int | None
    error: str | None


class DeadLetterDetail(DeadLetterSummary):
    headers: dict[str, Any]
    body: Any


class DeadLetterList(BaseModel):
    queue: str
    items: list[DeadLetterSummary]


class DeadLetterOutcome(BaseModel):
    queue: str
    key: str
    outcome: str


Key = Annotated[str, Path(min_length=1, max_length=200, description="message id or sha256:...")]


def dead_letter_router(runtime: ServiceRuntime) -> APIRouter:
    """The admin endpoints over the service's own dead-letter queue."""
    router = APIRouter(
        prefix="/admin/dead-letters",
        tags=["operators"],
        dependencies=[Depends(admin_principal)],
    )

    async def with_queue() -> tuple[AbstractChannel, DeadLetterQueue]:
        if not runtime.broker.is_connected:
            raise Problem(503, "service-unavailable", "Broker unreachable", "Try again shortly")
        channel = await runtime.broker.channel(confirms=True)
        return channel, DeadLetterQueue(channel, runtime.consumer.queue_name)

    def not_found(key: str) -> Problem:
        return Problem(404, "dead-letter-not-found", "No such dead letter", f"No dead letter {key}")

    @router.get("", response_model=DeadLetterList, summary="The messages this service gave up on")
    async def list_dead_letters() -> DeadLetterList:
        channel, queue = await with_queue()
        try:
            letters = await queue.letters()
        finally:
            await channel.close()
        return DeadLetterList(
            queue=queue.name, items=[DeadLetterSummary(**d.summary()) for d in letters]
        )

    @router.get("/{key}", response_model=DeadLetterDetail, summary="One dead letter, whole")
    async def show_dead_letter(key: Key) -> DeadLetterDetail:
        channel, queue = await with_queue()
        try:
            letter = await queue.find(key)
        finally:
            await channel.close()
        if letter is None:
            raise not_found(key)
        return DeadLetterDetail(**letter.detail())

    @router.post(
        "/{key}/replay",
        response_model=DeadLetterOutcome,
        summary="Put the message back on the work queue (after the fix)",
    )
    async def replay_dead_letter(key: Key) -> DeadLetterOutcome:
        channel, queue = await with_queue()
        try:
            moved = await queue.replay({key})
        except ReplayFailed as exc:
            raise Problem(503, "replay-failed", "Not replayed", str(exc)) from exc
        finally:
            if not channel.is_closed:
                await channel.close()
        if not moved:
            raise not_found(key)
        return DeadLetterOutcome(queue=queue.name, key=key, outcome="replayed")

    @router.post(
        "/{key}/discard",
        response_model=DeadLetterOutcome,
        summary="Drop a poison message for good (it is logged whole first)",
    )
    async def discard_dead_letter(key: Key) -> DeadLetterOutcome:
        channel, queue = await with_queue()
        try:
            dropped = await queue.discard(key)
        finally:
            await channel.close()
        if dropped is None:
            raise not_found(key)
        return DeadLetterOutcome(queue=queue.name, key=key, outcome="discarded")

    return router


# -- command line ----------------------------------------------------------------


async def run(command: str, queue: str, key: str | None, replay_all: bool, amqp_url: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        dead = DeadLetterQueue(channel, queue)
        if command == "list":
            letters = await dead.letters()
            for letter in letters:
                print(json.dumps(letter.summary(), default=str))
            print(f"{len(letters)} dead letter(s) in {dead.name}", file=sys.stderr)
            return 0
        if command == "show":
            found = await dead.find(key or "")
            if found is not None:
                print(json.dumps(found.detail(), indent=2, default=str))
                return 0
        elif command == "replay":
            try:
                moved = await dead.replay(None if replay_all else {key or ""})
            except ReplayFailed as exc:
                print(exc, file=sys.stderr)
                return 1
            print(f"replayed {len(moved)} message(s) to {queue}", file=sys.stderr)
            if moved:
                return 0
        elif command == "discard" and await dead.discard(key or "") is not None:
            print(f"discarded {key} from {dead.name}", file=sys.stderr)
            return 0
        print("no such dead letter", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="oms-deadletters",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--amqp-url", default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("list", "show", "replay", "discard"):
        command = sub.add_parser(name)
        command.add_argument("queue", help="the service's queue, e.g. oms.order")
        if name != "list":
            command.add_argument("key", nargs="?", help="message id, or sha256:... (see list)")
        if name == "replay":
            command.add_argument("--all", action="store_true", help="every dead letter")
    args = parser.parse_args(argv)
    if args.command != "list" and not (getattr(args, "key", None) or getattr(args, "all", False)):
        parser.error("give a KEY (or, for replay, --all)")
    amqp_url = args.amqp_url or ServiceSettings().amqp_url
    sys.exit(
        asyncio.run(
            run(
                args.command,
                args.queue,
                getattr(args, "key", None),
                getattr(args, "all", False),
                amqp_url,
            )
        )
    )


if __name__ == "__main__":
    main()
