"""The outbox and inbox tables each service keeps in its own schema."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB


@dataclass(frozen=True)
class MessagingTables:
    schema: str
    outbox: Table
    inbox: Table

    @property
    def notify_channel(self) -> str:
        return outbox_notify_channel(self.schema)


def outbox_notify_channel(schema: str) -> str:
    return f"oms_outbox_{schema}"


def define_messaging_tables(metadata: MetaData) -> MessagingTables:
    assert metadata.schema, "each service keeps its tables in its own schema"
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("message_id", Uuid, nullable=False, unique=True),
        Column("exchange", Text, nullable=False),
        Column("routing_key", Text, nullable=False),
        Column("message_type", Text, nullable=False),
        Column("correlation_id", Text),
        Column("headers", JSONB, nullable=False, server_default="{}"),
        Column("body", LargeBinary, nullable=False),
        Column("mandatory", Integer, nullable=False, server_default="0"),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("message_id", Uuid, primary_key=True),
        Column("message_type", Text, nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("inbox_received_at", "received_at"),
    )
    return MessagingTables(schema=metadata.schema, outbox=outbox, inbox=inbox)
