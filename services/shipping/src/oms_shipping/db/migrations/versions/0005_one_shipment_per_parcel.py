"""One shipment per parcel: a fulfillment id (unique) and a stock location per
shipment instead of one shipment per order.

Every shipment that exists is its order's only parcel: its fulfillment id is the
order's id (what a message without a fulfillment id means) and it leaves from the
`default` location. A cancellation that arrived before its order's shipment (a row
without lines) cancelled the whole order.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE shipping.shipments ADD COLUMN fulfillment_id text")
    op.execute("ALTER TABLE shipping.shipments ADD COLUMN location text NOT NULL DEFAULT 'default'")
    op.execute(
        "ALTER TABLE shipping.shipments ADD COLUMN order_cancelled boolean NOT NULL DEFAULT false"
    )
    op.execute("""
        UPDATE shipping.shipments
        SET fulfillment_id = order_id,
            order_cancelled = (status = 'cancelled' AND lines = '[]'::jsonb)""")
    op.execute("ALTER TABLE shipping.shipments ALTER COLUMN fulfillment_id SET NOT NULL")
    op.execute(
        "ALTER TABLE shipping.shipments "
        "ADD CONSTRAINT shipments_fulfillment_id_key UNIQUE (fulfillment_id)"
    )
    op.execute("ALTER TABLE shipping.shipments DROP CONSTRAINT shipments_order_id_key")
    op.execute("CREATE INDEX shipments_order_id ON shipping.shipments (order_id)")


def downgrade() -> None:
    # Only while every order still has one shipment (the unique constraint says so).
    op.execute("DROP INDEX shipping.shipments_order_id")
    op.execute(
        "ALTER TABLE shipping.shipments ADD CONSTRAINT shipments_order_id_key UNIQUE (order_id)"
    )
    op.execute("ALTER TABLE shipping.shipments DROP CONSTRAINT shipments_fulfillment_id_key")
    op.execute("ALTER TABLE shipping.shipments DROP COLUMN order_cancelled")
    op.execute("ALTER TABLE shipping.shipments DROP COLUMN location")
    op.execute("ALTER TABLE shipping.shipments DROP COLUMN fulfillment_id")
