"""A service's queues: the work queue, a delay queue per retry delay, the dead letters;
classic or quorum (OMS_QUEUE_TYPE), and the way from one type to the other.

Quorum queues are replicated over the nodes of a RabbitMQ cluster (classic ones live
on one node). Declared as quorum:
- the work queue has a delivery limit: a message redelivered that often (its
  consumers kept dying or giving it back, e.g. it crashes the process) goes to the
  dead letters instead of circling for ever;
- messages leave the work queue (over the delivery limit) and the delay queues
  (their delay over, back to the work queue) by at-least-once dead-lettering: the
  broker keeps a message until the queue it moves to has confirmed it, where classic
  dead-lettering may drop it (it needs `x-overflow: reject-publish`, which changes
  nothing here as no queue has a length limit).

A queue's type cannot change in place (a declaration with other arguments is refused
with PRECONDITION_FAILED): `python -m oms_<service> migrate-queues` moves a stopped
service's queues to the configured type without losing a message (see `migrate`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractQueue

from oms_contracts import CATALOG
from oms_runtime.messaging.broker import declare_exchanges

log = logging.getLogger(__name__)

QueueType = Literal["classic", "quorum"]


def retry_queue_name(queue: str, delay: float) -> str:
    return f"{queue}.retry.{round(delay * 1000)}ms"


def dead_letter_queue_name(queue: str) -> str:
    return f"{queue}.dead"


class QueueTypeMismatch(Exception):
    """A queue exists with other arguments than the configured type gives it."""


@dataclass(frozen=True)
class ServiceQueues:
    work: str
    retry_delays: tuple[float, ...]
    queue_type: QueueType = "classic"
    # Deliveries of one message before a quorum work queue dead-letters it.
    delivery_limit: int = 20

    @property
    def dead(self) -> str:
        return dead_letter_queue_name(self.work)

    def retry(self, delay: float) -> str:
        return retry_queue_name(self.work, delay)

    def _typed(self, arguments: dict[str, Any]) -> dict[str, Any]:
        if self.queue_type == "classic":
            return arguments
        return {"x-queue-type": "quorum", **arguments}

    def _moving_on(self, target: str) -> dict[str, Any]:
        """Dead-lettering into `target` through the default exchange."""
        arguments: dict[str, Any] = {
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": target,
        }
        if self.queue_type == "quorum":
            arguments |= {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
        return arguments

    def work_arguments(self) -> dict[str, Any]:
        if self.queue_type == "classic":
            return {}
        return self._typed({"x-delivery-limit": self.delivery_limit, **self._moving_on(self.dead)})

    def retry_arguments(self, delay: float) -> dict[str, Any]:
        return self._typed({"x-message-ttl": round(delay * 1000), **self._moving_on(self.work)})

    def dead_arguments(self) -> dict[str, Any]:
        return self._typed({})

    def declarations(self) -> list[tuple[str, dict[str, Any]]]:
        """Every queue of the service with its arguments, the work queue first."""
        return [
            (self.work, self.work_arguments()),
            *((self.retry(delay), self.retry_arguments(delay)) for delay in self.retry_delays),
            (self.dead, self.dead_arguments()),
        ]


async def declare_service_queues(
    channel: AbstractChannel, queues: ServiceQueues, routing_keys: Iterable[str]
) -> AbstractQueue:
    """Declare the service's queues and bind the work queue; returns the work queue.
    Raises QueueTypeMismatch (the channel is closed then) if one exists with other
    arguments, e.g. classic while quorum is configured."""
    exchanges = await declare_exchanges(channel)
    declared: dict[str, AbstractQueue] = {}
    for name, arguments in queues.declarations():
        try:
            declared[name] = await channel.declare_queue(name, durable=True, arguments=arguments)
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            raise QueueTypeMismatch(
                f"queue {name} exists with other arguments than a {queues.queue_type} queue "
                f"of this service ({exc}); stop the service and run "
                f"`python -m oms_<service> migrate-queues` to move it to OMS_QUEUE_TYPE"
            ) from exc
    work = declared[queues.work]
    for routing_key in routing_keys:
        await work.bind(exchanges[CATALOG[routing_key].exchange], routing_key=routing_key)
    return work


# -- moving a service's queues to another type -----------------------------------------


async def _matches(connection: AbstractConnection, name: str, arguments: dict[str, Any]) -> bool:
    """Whether `name` exists with these arguments (a missing queue is created so)."""
    channel = await connection.channel()
    try:
        await channel.declare_queue(name, durable=True, arguments=arguments)
    except aiormq.exceptions.ChannelPreconditionFailed:
        return False
    if not channel.is_closed:
        await channel.close()
    return True


async def _move(connection: AbstractConnection, source: str, target: str) -> int:
    """Move every message of `source` into `target`, unchanged (properties and headers
    kept), each acknowledged only once the broker confirmed its copy: a crash in
    between duplicates a message (the inbox absorbs it), never loses one.

    On a channel of its own: RabbitMQ 3.10 crashes a channel that publishes to a
    queue it knew as another type before the queue was deleted and declared anew."""
    channel = await connection.channel(publisher_confirms=True)
    queue = await channel.declare_queue(source, passive=True)
    moved = 0
    while (message := await queue.get(no_ack=False, fail=False, timeout=5)) is not None:
        await channel.default_exchange.publish(
            aio_pika.Message(
                message.body,
                headers=message.headers,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                priority=message.priority,
                correlation_id=message.correlation_id,
                reply_to=message.reply_to,
                message_id=message.message_id,
                timestamp=message.timestamp,
                type=message.type,
                app_id=message.app_id,
            ),
            routing_key=target,
        )
        await message.ack()
        moved += 1
    await channel.close()
    return moved


class ServiceStillConsuming(Exception):
    pass


async def _existing(connection: AbstractConnection, name: str) -> tuple[int, int] | None:
    """(messages, consumers) of queue `name`, or None if there is no such queue."""
    channel = await connection.channel()
    try:
        declared = await channel.declare_queue(name, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return None
    result = declared.declaration_result
    await channel.close()
    return int(result.message_count or 0), int(result.consumer_count or 0)


async def _move_out_and_delete(connection: AbstractConnection, source: str, target: str) -> int:
    """Move `source`'s messages to `target`, then delete `source` once it is seen empty
    (a quorum queue cannot be deleted "if empty", so it is checked first)."""
    moved = 0
    for _ in range(5):
        moved += await _move(connection, source, target)
        state = await _existing(connection, source)
        if state is None:
            return moved
        if state == (0, 0):
            channel = await connection.channel()
            await channel.queue_delete(source)
            await channel.close()
            return moved
        if state[1] > 0:
            raise ServiceStillConsuming(f"{source} has {state[1]} consumer(s)")
    raise RuntimeError(f"{source} keeps receiving messages; is something still publishing?")


async def migrate(
    connection: AbstractConnection, queues: ServiceQueues, routing_keys: Iterable[str]
) -> dict[str, int]:
    """Bring the service's queues to `queues.queue_type`; returns the messages moved
    per queue that had to change. Run it while every process of the service is
    stopped (refused otherwise); other services may keep publishing meanwhile:

    - a delay queue's messages go to the work queue at once, their remaining delay
      skipped (the consumer's retry count travels in their headers);
    - the work queue: a holding queue (`<queue>.migrating`) takes its bindings, so
      new messages arrive there, then its messages; the queue is declared anew with
      the right type and bindings, and gets everything back from the holding queue;
    - the dead letters go through a holding queue the same way.

    A message published while both the old queue and the holding queue are bound
    lands in both: the service's inbox handles it once. Interrupted, it can be run
    again: it first empties a holding queue left behind into its queue.
    """
    keys = list(routing_keys)
    work = await _existing(connection, queues.work)
    if work is not None and work[1] > 0:
        raise ServiceStillConsuming(
            f"{queues.work} has {work[1]} consumer(s): stop every process of the service first"
        )
    channel = await connection.channel(publisher_confirms=True)
    exchanges = await declare_exchanges(channel)
    moved: dict[str, int] = {}

    async def rebind(queue: AbstractQueue, bind: bool) -> None:
        for key in keys:
            exchange = exchanges[CATALOG[key].exchange]
            if bind:
                await queue.bind(exchange, routing_key=key)
            else:
                await queue.unbind(exchange, routing_key=key)

    async def recreate(name: str, arguments: dict[str, Any], bound: bool) -> None:
        holding_name = f"{name}.migrating"
        holding = await channel.declare_queue(holding_name, durable=True)
        old = await channel.declare_queue(name, passive=True)
        if bound:
            await rebind(holding, True)
            await rebind(old, False)
        count = await _move_out_and_delete(connection, name, holding_name)
        new = await channel.declare_queue(name, durable=True, arguments=arguments)
        if bound:
            await rebind(new, True)
        moved[name] = count
        log.info("queue %s is now %s (%d messages moved)", name, queues.queue_type, count)

    async def empty_holding(name: str, bound: bool) -> None:
        holding_name = f"{name}.migrating"
        if await _existing(connection, holding_name) is None:
            return
        holding = await channel.declare_queue(holding_name, passive=True)
        if bound:
            await rebind(holding, False)
        await _move_out_and_delete(connection, holding_name, name)

    # Delay queues first: what they hold goes to the work queue, and moves with it.
    for delay in queues.retry_delays:
        name, arguments = queues.retry(delay), queues.retry_arguments(delay)
        if await _matches(connection, name, arguments):
            continue
        moved[name] = await _move_out_and_delete(connection, name, queues.work)
        await channel.declare_queue(name, durable=True, arguments=arguments)
        log.info("queue %s is now %s", name, queues.queue_type)

    if not await _matches(connection, queues.work, queues.work_arguments()):
        await recreate(queues.work, queues.work_arguments(), bound=True)
    else:  # right already, or just created by the check: make sure it is bound
        await rebind(await channel.declare_queue(queues.work, passive=True), True)
    await empty_holding(queues.work, bound=True)

    if not await _matches(connection, queues.dead, queues.dead_arguments()):
        await recreate(queues.dead, queues.dead_arguments(), bound=False)
    await empty_holding(queues.dead, bound=False)
    await channel.close()
    return moved
