"""An order's parcels: one per stock location, each with its own dispatch note,
departure, settlement and delivery. Existing orders get the one parcel they had
(from the default location, with the order's id), built from the columns that
described it, which go.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_LEFT = ("shipped", "completed")


def _parcel(row: sa.Row) -> dict[str, object]:
    """The order's one parcel, as the old columns tell it."""
    if row.tracking_number is not None or row.status in _LEFT:
        status = "delivered" if row.delivered else "dispatched"
        dispatched_at = row.updated_at.isoformat()
    elif row.shipment_id is not None:
        status, dispatched_at = "created", None
    else:
        status, dispatched_at = "pending", None
    if row.status == "cancelled" and status in ("pending", "created"):
        status = "cancelled"
    lines = json.loads(row.lines) if isinstance(row.lines, str) else row.lines
    return {
        "id": str(row.id),
        "location": "default",
        "lines": [[line["sku"], line["quantity"]] for line in lines],
        "serves": None,
        "status": status,
        "shipment_id": row.shipment_id,
        "carrier": row.carrier,
        "tracking_number": row.tracking_number,
        "dispatched_at": dispatched_at,
        "stock_committed": row.stock_committed,
        "captured_amount": row.captured_amount,
        "settled_by_hand": row.settlement_forced,
        "cancel_requested": "cancel_shipment" in (row.pending_compensations or []),
    }


def upgrade() -> None:
    op.execute("ALTER TABLE orders.orders ADD COLUMN fulfillments jsonb NOT NULL DEFAULT '[]'")
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, status, lines, shipment_id, carrier, tracking_number, "
            "stock_committed, captured_amount, delivered, settlement_forced, "
            "pending_compensations, updated_at FROM orders.orders "
            "WHERE status NOT IN ('pending', 'rejected') AND lines IS NOT NULL"
        )
    )
    for row in rows.fetchall():
        bind.execute(
            sa.text("UPDATE orders.orders SET fulfillments = CAST(:f AS jsonb) WHERE id = :id"),
            {"f": json.dumps([_parcel(row)]), "id": row.id},
        )
    op.execute("""
        ALTER TABLE orders.orders
            DROP COLUMN shipment_id,
            DROP COLUMN carrier,
            DROP COLUMN tracking_number,
            DROP COLUMN stock_committed,
            DROP COLUMN captured_amount,
            DROP COLUMN delivered,
            DROP COLUMN settlement_forced""")


def downgrade() -> None:
    op.execute("""
        ALTER TABLE orders.orders
            ADD COLUMN shipment_id text,
            ADD COLUMN carrier text,
            ADD COLUMN tracking_number text,
            ADD COLUMN stock_committed boolean NOT NULL DEFAULT false,
            ADD COLUMN captured_amount bigint NOT NULL DEFAULT 0,
            ADD COLUMN delivered boolean NOT NULL DEFAULT false,
            ADD COLUMN settlement_forced boolean NOT NULL DEFAULT false""")
    op.execute("""
        UPDATE orders.orders SET
            shipment_id = fulfillments -> 0 ->> 'shipment_id',
            carrier = fulfillments -> 0 ->> 'carrier',
            tracking_number = fulfillments -> 0 ->> 'tracking_number',
            stock_committed = coalesce((fulfillments -> 0 ->> 'stock_committed')::boolean, false),
            captured_amount = (
                SELECT coalesce(sum((parcel ->> 'captured_amount')::bigint), 0)
                FROM jsonb_array_elements(fulfillments) AS parcel),
            delivered = coalesce(fulfillments -> 0 ->> 'status' = 'delivered', false)""")
    op.execute("ALTER TABLE orders.orders DROP COLUMN fulfillments")
