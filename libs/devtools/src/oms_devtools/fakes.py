"""The in-memory unit of work the services' handler tests build their fakes on
(cosmicpython's FakeUnitOfWork): repositories are whatever the test gives (lists
and dictionaries), `commit` runs the service's own event map over what they track,
as the real unit of work does, and keeps the messages it would have sent."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Protocol, Self

from oms_contracts import Envelope, Message
from oms_runtime.messaging.events import EventMap, RecordsEvents, dispatch_new_events


class TrackingRepository(Protocol):
    """A fake repository: the aggregates a handler loaded for update, or added."""

    tracked: list[Any]


class InMemoryUnitOfWork:
    # Nothing is received: a handler test calls the handler directly.
    incoming: Envelope | None = None
    causation_id: str | None = None

    def __init__(self, events: EventMap[Any, Any]) -> None:
        self._events = events
        self.commits = 0
        self.sent: list[Message] = []

    def repositories(self) -> Sequence[TrackingRepository]:
        raise NotImplementedError

    def stored(self) -> None:
        """What the commit keeps, beyond the aggregates themselves (they live on)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for repository in self.repositories():
            repository.tracked = []

    async def commit(self) -> None:
        await dispatch_new_events(self._events, self, self._tracked, self._send)
        self.stored()
        self.commits += 1

    def sent_types(self) -> list[str]:
        return [message.routing_key for message in self.sent]

    def _tracked(self) -> list[RecordsEvents]:
        return [aggregate for repository in self.repositories() for aggregate in repository.tracked]

    def _send(self, message: Message, correlation_id: str | None) -> Envelope:
        self.sent.append(message)
        return Envelope.wrap(message, correlation_id=correlation_id, causation_id=None)
