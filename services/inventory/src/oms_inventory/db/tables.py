from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from oms_runtime.messaging.tables import define_messaging_tables

SCHEMA = "inventory"
metadata = MetaData(schema=SCHEMA)
messaging = define_messaging_tables(metadata)

# Warehouses, stores: where stock is kept and parcels leave from. `default` exists
# from the migration that introduced them and ships everywhere.
locations = Table(
    "locations",
    metadata,
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    # ISO 3166-1 alpha-2; NULL for `default`, whose whereabouts nobody recorded.
    Column("country", Text),
    # Lower is preferred when several locations could send an order.
    Column("priority", Integer, nullable=False, server_default="100"),
    # ISO countries it ships to; NULL ships everywhere.
    Column("serves", ARRAY(Text)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

products = Table(
    "products",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("low_stock_threshold", Integer, nullable=False, server_default="0"),
    Column("reorder_quantity", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# A product's stock at one location: a row where it is (or was) stocked. Reservations
# lock these rows, in (sku, location) order; `id` is what writes address a row by.
stock = Table(
    "stock",
    metadata,
    Column("sku", Text, ForeignKey(f"{SCHEMA}.products.sku"), primary_key=True),
    Column("location", Text, ForeignKey(f"{SCHEMA}.locations.code"), primary_key=True),
    Column("id", BigInteger, Identity(), nullable=False, unique=True),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False, server_default="0"),
    Column("low_stock_alerted", Boolean, nullable=False, server_default="false"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Returned units that came back damaged: counted here, never on hand (sellable).
    Column("damaged", Integer, nullable=False, server_default="0"),
    # The last line of defence against overselling, whatever the code does.
    CheckConstraint("reserved >= 0 AND on_hand >= reserved", name="stock_never_negative"),
    CheckConstraint("damaged >= 0", name="damaged_never_negative"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("status", Text, nullable=False),
    # [{"sku", "quantity", "unit_price"}]: read and written with the reservation.
    Column("lines", JSONB, nullable=False, server_default="[]"),
    Column("currency", Text),
    Column("refusal_reason", Text),
    Column("refused_skus", ARRAY(Text), nullable=False, server_default="{}"),
    Column("expires_at", DateTime(timezone=True)),
    # The allocated locations as they were ([{"code", "country", "priority", "serves"}]).
    Column("locations", JSONB, nullable=False, server_default="[]"),
    Column("country", Text),
    Index("reservations_expiring", "expires_at", postgresql_where=text("status = 'reserved'")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

stock_movements = Table(
    "stock_movements",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("sku", Text, ForeignKey(f"{SCHEMA}.products.sku"), nullable=False),
    Column("reason", Text, nullable=False),
    Column("on_hand_delta", Integer, nullable=False),
    Column("reserved_delta", Integer, nullable=False),
    Column("order_id", Text),
    Column("note", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("location", Text, ForeignKey(f"{SCHEMA}.locations.code"), nullable=False),
    Column("damaged_delta", Integer, nullable=False, server_default="0"),
    Index("stock_movements_sku", "sku", "id"),
)

# Customer returns whose goods were booked into stock: one row per return, so a
# redelivered or re-sent `inventory.return_stock` books nothing more.
stock_returns = Table(
    "stock_returns",
    metadata,
    Column("return_id", Text, primary_key=True),
    Column("order_id", Text, nullable=False),
    # What was booked: [{"sku", "quantity", "condition", "location"}].
    Column("lines", JSONB, nullable=False),
    Column("booked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

replenishments = Table(
    "replenishments",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("sku", Text, ForeignKey(f"{SCHEMA}.products.sku"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("status", Text, nullable=False, server_default="open"),
    Column("available_at_request", Integer, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("fulfilled_at", DateTime(timezone=True)),
    Column("fulfilled_by", Text),
    Column("location", Text, ForeignKey(f"{SCHEMA}.locations.code"), nullable=False),
    # One open request per SKU and location: a second crossing while one is open
    # adds nothing.
    Index(
        "replenishments_one_open",
        "sku",
        "location",
        unique=True,
        postgresql_where=text("status = 'open'"),
    ),
)

restock_receipts = Table(
    "restock_receipts",
    metadata,
    Column("sku", Text, ForeignKey(f"{SCHEMA}.products.sku"), primary_key=True),
    Column("reference", Text, primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # A delivery is counted once per location that received it.
    Column("location", Text, ForeignKey(f"{SCHEMA}.locations.code"), primary_key=True),
)
