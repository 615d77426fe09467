"""Reservation lines live in the reservation's row (JSONB): one read, one write.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE inventory.reservations ADD COLUMN lines jsonb NOT NULL DEFAULT '[]'")
    op.execute("""
        UPDATE inventory.reservations r SET lines = coalesce((
            SELECT jsonb_agg(jsonb_build_object('sku', l.sku, 'quantity', l.quantity,
                                                'unit_price', l.unit_price) ORDER BY l.sku)
            FROM inventory.reservation_lines l WHERE l.order_id = r.order_id), '[]'::jsonb)""")
    op.execute("DROP TABLE inventory.reservation_lines")


def downgrade() -> None:
    op.execute("""
        CREATE TABLE inventory.reservation_lines (
            order_id text NOT NULL REFERENCES inventory.reservations (order_id)
                ON DELETE CASCADE,
            sku text NOT NULL REFERENCES inventory.products (sku),
            quantity integer NOT NULL CHECK (quantity > 0),
            unit_price bigint NOT NULL,
            PRIMARY KEY (order_id, sku)
        )""")
    op.execute("""
        INSERT INTO inventory.reservation_lines (order_id, sku, quantity, unit_price)
        SELECT r.order_id, l->>'sku', (l->>'quantity')::int, (l->>'unit_price')::bigint
        FROM inventory.reservations r, jsonb_array_elements(r.lines) AS l""")
    op.execute("ALTER TABLE inventory.reservations DROP COLUMN lines")
