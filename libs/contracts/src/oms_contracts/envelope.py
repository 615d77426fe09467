from __future__ import annotations

import builtins
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

EVENTS_EXCHANGE = "oms.events"
COMMANDS_EXCHANGE = "oms.commands"


class Message(BaseModel):
    """The `data` of an envelope. Subclasses name their routing key and version.

    Unknown fields are ignored on read so that adding a field to a message is never
    a breaking change for consumers that do not know it yet (tolerant reader).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    routing_key: ClassVar[str]
    version: ClassVar[int] = 1
    kind: ClassVar[Literal["event", "command"]]
    exchange: ClassVar[str]


class Event(Message):
    kind: ClassVar[Literal["event", "command"]] = "event"
    exchange: ClassVar[str] = EVENTS_EXCHANGE


class Command(Message):
    kind: ClassVar[Literal["event", "command"]] = "command"
    exchange: ClassVar[str] = COMMANDS_EXCHANGE


M = TypeVar("M", bound=Message)


def _now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """What travels on the wire: metadata every consumer relies on, plus `data`."""

    model_config = ConfigDict(extra="ignore")

    message_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int
    occurred_at: datetime = Field(default_factory=_now)
    correlation_id: str | None = None
    causation_id: str | None = None
    data: dict[str, Any]

    @classmethod
    def wrap(
        cls,
        message: Message,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> Envelope:
        return cls(
            type=message.routing_key,
            version=message.version,
            correlation_id=correlation_id,
            causation_id=causation_id,
            data=message.model_dump(mode="json"),
        )

    def payload(self, model: builtins.type[M]) -> M:
        return model.model_validate(self.data)
