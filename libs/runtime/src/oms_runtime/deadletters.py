"""`oms-deadletters`: look at and replay the messages a service gave up on.

    oms-deadletters list oms.order                 # what is parked, with its error
    oms-deadletters show oms.order MESSAGE_ID      # one message, whole
    oms-deadletters replay oms.order MESSAGE_ID    # back to the work queue
    oms-deadletters replay oms.order --all

Every service's dead-letter queue is `<its queue>.dead` (oms.order.dead, ...).
Replaying puts the message back on the service's work queue with its retry count
reset; the service's inbox still drops it if it was, after all, handled before.
The broker is taken from OMS_AMQP_URL (or --amqp-url).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from oms_runtime.messaging.consumer import ATTEMPT_HEADER, ERROR_HEADER, dead_letter_queue_name
from oms_runtime.settings import ServiceSettings


async def _parked(channel: AbstractChannel, queue: str) -> list[AbstractIncomingMessage]:
    """Every message in the dead-letter queue, unacknowledged (so none is lost if we
    stop here: closing the channel puts them all back)."""
    # Passive: the queue's type and arguments are the service's (classic or quorum).
    dead = await channel.declare_queue(dead_letter_queue_name(queue), passive=True)
    messages: list[AbstractIncomingMessage] = []
    while (message := await dead.get(no_ack=False, fail=False, timeout=5)) is not None:
        messages.append(message)
    return messages


def _summary(message: AbstractIncomingMessage) -> dict[str, Any]:
    headers = message.headers or {}
    return {
        "message_id": message.message_id,
        "type": message.type,
        "correlation_id": message.correlation_id,
        "attempts": headers.get(ATTEMPT_HEADER),
        "error": headers.get(ERROR_HEADER),
    }


async def run(
    command: str, queue: str, message_id: str | None, replay_all: bool, amqp_url: str
) -> int:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        parked = await _parked(channel, queue)
        chosen = [m for m in parked if replay_all or m.message_id == message_id]
        if command == "list":
            for message in parked:
                print(json.dumps(_summary(message), default=str))
            print(
                f"{len(parked)} dead letter(s) in {dead_letter_queue_name(queue)}", file=sys.stderr
            )
        elif command == "show":
            for message in chosen:
                print(
                    json.dumps(
                        {
                            **_summary(message),
                            "headers": message.headers,
                            "body": json.loads(message.body),
                        },
                        indent=2,
                        default=str,
                    )
                )
        elif command == "replay":
            for message in chosen:
                headers = dict(message.headers or {})
                headers[ATTEMPT_HEADER] = 0
                await channel.default_exchange.publish(
                    aio_pika.Message(
                        message.body,
                        message_id=message.message_id,
                        type=message.type,
                        correlation_id=message.correlation_id,
                        content_type=message.content_type,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        headers=headers,
                    ),
                    routing_key=queue,
                )
                await message.ack()  # only once the broker confirmed the copy
            print(f"replayed {len(chosen)} message(s) to {queue}", file=sys.stderr)
        if command != "list" and not chosen:
            print("no such dead letter", file=sys.stderr)
            return 1
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="oms-deadletters",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--amqp-url", default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("list", "show", "replay"):
        command = sub.add_parser(name)
        command.add_argument("queue", help="the service's queue, e.g. oms.order")
        if name != "list":
            command.add_argument("message_id", nargs="?")
        if name == "replay":
            command.add_argument("--all", action="store_true", help="every dead letter")
    args = parser.parse_args(argv)
    if args.command != "list" and not (
        getattr(args, "message_id", None) or getattr(args, "all", False)
    ):
        parser.error("give a MESSAGE_ID (or --all to replay everything)")
    amqp_url = args.amqp_url or ServiceSettings().amqp_url
    sys.exit(
        asyncio.run(
            run(
                args.command,
                args.queue,
                getattr(args, "message_id", None),
                getattr(args, "all", False),
                amqp_url,
            )
        )
    )


if __name__ == "__main__":
    main()
