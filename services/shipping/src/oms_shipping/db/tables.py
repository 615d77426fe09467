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
    text,
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

# Return parcels: one per return of the order service (its id), from the label to
# the warehouse's receipt.
returns = Table(
    "returns",
    metadata,
    Column("id", Text, primary_key=True),
    Column("order_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("return_tracking_number", Text, unique=True),
    # [{"sku", "quantity", "location"}]: what the customer sends back.
    Column("lines", JSONB, nullable=False),
    # [{"sku", "quantity", "condition"}]: what arrived.
    Column("received", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("pickup_address", JSONB),
    Column("received_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("returns_order_id", "order_id"),
    # The warehouse's queue: returns to receive (`label_created`), page by page.
    Index("returns_status", "status", "id"),
)
