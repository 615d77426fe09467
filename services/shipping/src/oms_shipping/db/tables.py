from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from oms_contracts.common import DEFAULT_LOCATION
from oms_runtime.messaging.tables import define_messaging_tables

SCHEMA = "shipping"
metadata = MetaData(schema=SCHEMA)
messaging = define_messaging_tables(metadata)

shipments = Table(
    "shipments",
    metadata,
    Column("id", Uuid, primary_key=True),
    # One shipment per parcel: the order service's fulfillment id (the order's own
    # id for a shipment from before parcels), the stock location it leaves from.
    Column("order_id", Text, nullable=False),
    Column("fulfillment_id", Text, nullable=False, unique=True),
    Column("location", Text, nullable=False, server_default=DEFAULT_LOCATION),
    Column("order_cancelled", Boolean, nullable=False, server_default=false()),
    Column("status", Text, nullable=False),
    Column("carrier", Text),
    Column("tracking_number", Text, unique=True),
    Column("lines", JSONB, nullable=False),
    Column("address", JSONB),
    Column("failure_reason", Text),
    Column("dispatched_at", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
    Column("last_event_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("shipments_order_id", "order_id"),
)

tracking_events = Table(
    "tracking_events",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("shipment_id", Uuid, ForeignKey(f"{SCHEMA}.shipments.id"), nullable=False),
    Column("status", Text, nullable=False),
    Column("location", Text),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("shipment_id", "status", "occurred_at", name="tracking_event_once"),
)

# Webhook ids (Standard Webhooks `webhook-id`) already acted on: a replayed delivery
# is acknowledged without effect. Pruned once far older than the signature tolerance.
seen_webhooks = Table(
    "seen_webhooks",
    metadata,
    Column("webhook_id", Text, primary_key=True),
    Column("shipment_id", Uuid, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("seen_webhooks_received_at", "received_at"),
)
