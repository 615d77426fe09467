from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from oms_runtime.messaging.tables import define_messaging_tables

SCHEMA = "orders"
metadata = MetaData(schema=SCHEMA)
messaging = define_messaging_tables(metadata)

orders = Table(
    "orders",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("customer_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("status_reason", Text),
    Column("status_detail", JSONB, nullable=False, server_default="{}"),
    Column("currency", Text),
    Column("total", BigInteger),
    Column("shipping_address", JSONB, nullable=False),
    # [{"sku", "quantity", "unit_price"}]: read and written with the order, in one row.
    Column("lines", JSONB, nullable=False),
    # One entry per parcel (stock location): read and written with the order too.
    Column("fulfillments", JSONB, nullable=False, server_default="[]"),
    Column("payment_token", Text, nullable=False),
    Column("payment_id", Text),
    Column("pending_compensations", ARRAY(Text), nullable=False, server_default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("cancellation_reason", Text),
    Column("deferred_compensations", ARRAY(Text), nullable=False, server_default="{}"),
    Column("resume_status", Text),
    Column("step_attempts", Integer, nullable=False, server_default="0"),
    Column("deadline_at", DateTime(timezone=True)),
    Column("pending_address", JSONB),
    Column("amendment", JSONB),
    Column("status_changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("deleted_at", DateTime(timezone=True)),
    Index("orders_customer_created", "customer_id", "created_at"),
    Index("orders_deadline", "deadline_at", postgresql_where=text("deadline_at IS NOT NULL")),
    Index(
        "orders_lines", "lines", postgresql_using="gin", postgresql_ops={"lines": "jsonb_path_ops"}
    ),
    Index("orders_status_created", "status", "created_at"),
    Index("orders_created", "created_at", "id"),
)

order_history = Table(
    "order_history",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("order_id", Uuid, ForeignKey(f"{SCHEMA}.orders.id", ondelete="CASCADE"), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("step", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("detail", JSONB, nullable=False, server_default="{}"),
    Column("message_id", Text),
    Index("order_history_order", "order_id", "id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", Text, primary_key=True),
    Column("scope", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("request_hash", Text, nullable=False),
    Column("order_id", Uuid, nullable=False),
    # The answer to the first request, for replays that must get it again (cancel).
    Column("response", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("idempotency_keys_created", "created_at"),
)

returns = Table(
    "returns",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("order_id", Uuid, ForeignKey(f"{SCHEMA}.orders.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("status_reason", Text),
    Column("reason", Text, nullable=False),
    # [{"sku", "location", "quantity", "unit_price", "resellable", "damaged"}]
    Column("lines", JSONB, nullable=False),
    Column("currency", Text, nullable=False),
    Column("refund_amount", BigInteger),
    Column("refunded_amount", BigInteger, nullable=False, server_default="0"),
    Column("return_tracking_number", Text),
    Column("stock_returned", Boolean, nullable=False, server_default="false"),
    Column("refund_attempt", Integer, nullable=False, server_default="0"),
    Column("deadline_at", DateTime(timezone=True)),
    Column("pickup_address", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("returns_order", "order_id", "created_at"),
    Index("returns_status", "status", "updated_at"),
    Index("returns_deadline", "deadline_at", postgresql_where=text("deadline_at IS NOT NULL")),
)
