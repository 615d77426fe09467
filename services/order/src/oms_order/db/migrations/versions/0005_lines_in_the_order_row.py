"""Order lines live in the order's row (JSONB): one read and one write per step.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE orders.orders ADD COLUMN lines jsonb")
    op.execute("""
        UPDATE orders.orders o SET lines = coalesce((
            SELECT jsonb_agg(jsonb_build_object('sku', l.sku, 'quantity', l.quantity,
                                                'unit_price', l.unit_price)
                             ORDER BY l.position)
            FROM orders.order_lines l WHERE l.order_id = o.id), '[]'::jsonb)""")
    op.execute("ALTER TABLE orders.orders ALTER COLUMN lines SET NOT NULL")
    op.execute("CREATE INDEX orders_lines ON orders.orders USING gin (lines jsonb_path_ops)")
    op.execute("DROP TABLE orders.order_lines")


def downgrade() -> None:
    op.execute("""
        CREATE TABLE orders.order_lines (
            order_id uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
            position integer NOT NULL,
            sku text NOT NULL,
            quantity integer NOT NULL,
            unit_price bigint,
            PRIMARY KEY (order_id, position)
        )""")
    op.execute("""
        INSERT INTO orders.order_lines (order_id, position, sku, quantity, unit_price)
        SELECT o.id, l.position - 1, l.line->>'sku', (l.line->>'quantity')::int,
               (l.line->>'unit_price')::bigint
        FROM orders.orders o, jsonb_array_elements(o.lines) WITH ORDINALITY AS l(line, position)""")
    op.execute("CREATE INDEX order_lines_sku ON orders.order_lines (sku)")
    op.execute("DROP INDEX orders.orders_lines")
    op.execute("ALTER TABLE orders.orders DROP COLUMN lines")
