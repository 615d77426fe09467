from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
    literal,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from oms_runtime.messaging.tables import define_messaging_tables

SCHEMA = "payment"
metadata = MetaData(schema=SCHEMA)
messaging = define_messaging_tables(metadata)

payments = Table(
    "payments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("order_id", Text, nullable=False, unique=True),
    Column("status", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("token", Text, nullable=False),
    Column("authorized_amount", BigInteger, nullable=False, server_default="0"),
    Column("captured_amount", BigInteger, nullable=False, server_default="0"),
    Column("refunded_amount", BigInteger, nullable=False, server_default="0"),
    Column("gateway_authorization_id", Text),
    Column("failure_reason", Text),
    Column("decline_code", Text),
    Column("void_requested", Boolean, nullable=False, server_default="false"),
    # What a called-off order keeps (its parcels that left); NULL: not called off.
    Column("keep_amount", BigInteger),
    Column("capture_requested", Boolean, nullable=False, server_default="false"),
    # The captures asked for, one per parcel: [{"fulfillment_id", "amount",
    # "status", "final", "error"}] in the order asked (fulfillment_id null: the
    # order's one capture from before parcels).
    Column("captures", JSONB, nullable=False, server_default="[]"),
    Column("pending_reauthorization", BigInteger),
    Column("reauthorizations", Integer, nullable=False, server_default="0"),
    Column("captured_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("payments_captured_at", "captured_at", postgresql_where=text("captured_at IS NOT NULL")),
)

payment_operations = Table(
    "payment_operations",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("payment_id", Uuid, ForeignKey(f"{SCHEMA}.payments.id"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("idempotency_key", Text, nullable=False, unique=True),
    Column("reference", Text),
    # A capture that settles: the gateway releases the rest of the hold with it.
    Column("final", Boolean, nullable=False, server_default="true"),
    # The trace of the request that queued it, continued when it is carried out.
    Column("traceparent", Text),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("payment_operations_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
)

gateway_calls = Table(
    "gateway_calls",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("payment_id", Uuid, nullable=False),
    Column("operation", Text, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("request", JSONB, nullable=False),
    Column("status_code", Integer),
    Column("response", JSONB),
    Column("error", Text),
    Column("latency_ms", Float, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("gateway_calls_payment", "payment_id"),
)


def without_token(request: Any) -> Any:
    """`request - 'token'`: a gateway call's request without the card token."""
    return request.op("-", return_type=JSONB)(literal("token", Text))


refunds = Table(
    "refunds",
    metadata,
    Column("id", Text, primary_key=True),
    Column("payment_id", Uuid, ForeignKey(f"{SCHEMA}.payments.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    # The return it gives the money back for (NULL: a cancellation's, or staff's).
    Column("return_id", Text),
    # Why it failed; and whether without the gateway's answer (it may have gone through).
    Column("error", Text),
    Column("unanswered", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("completed_at", DateTime(timezone=True)),
    Index("refunds_payment", "payment_id"),
)


# The books: money captured, one row per capture the gateway confirmed (append-only),
# so the settlement report counts each parcel's capture on its own day.
capture_ledger = Table(
    "capture_ledger",
    metadata,
    # The capture's idempotency key at the gateway: <payment id>:capture[:<parcel>].
    Column("id", Text, primary_key=True),
    Column("payment_id", Uuid, ForeignKey(f"{SCHEMA}.payments.id"), nullable=False),
    Column("fulfillment_id", Text),
    Column("amount", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("captured_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("capture_ledger_captured_at", "captured_at"),
    Index("capture_ledger_payment", "payment_id"),
)
