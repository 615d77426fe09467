"""When each order's status last changed (saga step durations).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        ALTER TABLE orders.orders
            ADD COLUMN status_changed_at timestamptz NOT NULL DEFAULT now()""")
    op.execute("UPDATE orders.orders SET status_changed_at = updated_at")


def downgrade() -> None:
    op.execute("ALTER TABLE orders.orders DROP COLUMN status_changed_at")
