"""A change of items under way, kept with the order.

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
    op.execute("ALTER TABLE orders.orders ADD COLUMN amendment jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE orders.orders DROP COLUMN amendment")
