"""How domain events leave aggregates: one way, in every service.

An aggregate records what happened to it in its `events` list and does nothing else
about it. A unit of work's repositories tell it which aggregates they loaded or added;
when it commits, the unit of work collects the events those aggregates recorded
(cosmicpython's `collect_new_events`) and hands each to the service's `EventMap`,
given once at bootstrap, which names the contract messages the event becomes. The
unit of work writes those to the outbox in the same transaction as the aggregates'
rows, as eShop saves the integration events its domain events cause with the change.

Domain events never cross the wire; only `oms_contracts` messages do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from oms_contracts import Envelope, Message

A = TypeVar("A")
U = TypeVar("U")


class RecordsEvents(Protocol):
    """An aggregate: what happened to it since it was loaded, oldest first."""

    events: list[Any]


def collect_new_events(aggregates: Iterable[RecordsEvents]) -> list[tuple[Any, Any]]:
    """(aggregate, event) for every event the aggregates recorded since the last
    collection, in the order recorded; their lists are left empty."""
    collected: list[tuple[Any, Any]] = []
    for aggregate in aggregates:
        recorded = aggregate.events
        if recorded:
            collected.extend((aggregate, event) for event in recorded)
            recorded.clear()
    return collected


class EventMap(Generic[A, U]):
    """What a service's domain events become: subclassed once per service and given
    to its unit of work factory at bootstrap. `A` is the service's aggregate type(s),
    `U` its unit of work."""

    def messages(self, event: Any, source: A) -> Sequence[Message]:
        """The contract messages `event`, recorded by `source`, sends (often none)."""
        raise NotImplementedError

    def correlation_id(self, source: A) -> str | None:
        """The saga `source`'s messages belong to (None: the unit of work's own)."""
        return None

    def recorded(self, unit_of_work: U, source: A, event: Any, sent: Sequence[Envelope]) -> None:
        """Anything else the transaction keeps about the event and what it sent (the
        order's history)."""

    async def follow_up(self, unit_of_work: U, event: Any) -> None:
        """Further work in the same transaction that the event calls for (inventory
        opens a replenishment on low stock); what that work records is collected in
        turn."""


# Events causing events (a follow-up recording more) settle within a few rounds.
_MAX_ROUNDS = 10


async def dispatch_new_events(
    event_map: EventMap[Any, Any] | None,
    unit_of_work: Any,
    aggregates: Callable[[], Iterable[RecordsEvents]],
    send: Callable[[Message, str | None], Envelope],
) -> None:
    """Hand every event `aggregates()` recorded to `event_map`, and `send` the
    messages it names (with the source's correlation id), until following them up
    records nothing more. The unit of work's commit; a test's fake one too."""
    for _ in range(_MAX_ROUNDS):
        collected = collect_new_events(aggregates())
        if not collected:
            return
        if event_map is None:
            raise RuntimeError("aggregates recorded events, but no event map was given")
        for source, event in collected:
            correlation_id = event_map.correlation_id(source)
            sent = [send(message, correlation_id) for message in event_map.messages(event, source)]
            event_map.recorded(unit_of_work, source, event, sent)
            await event_map.follow_up(unit_of_work, event)
    raise RuntimeError(f"events still recorded after {_MAX_ROUNDS} rounds")
