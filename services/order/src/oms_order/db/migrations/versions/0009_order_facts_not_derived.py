"""The order no longer stores whether its stock is reserved (nothing read it) or its
payment held (the one decision that needed it, whether a cancellation must void,
is now told by the reply that causes the cancellation).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        ALTER TABLE orders.orders
            DROP COLUMN stock_reserved,
            DROP COLUMN payment_authorized""")


def downgrade() -> None:
    op.execute("""
        ALTER TABLE orders.orders
            ADD COLUMN stock_reserved boolean NOT NULL DEFAULT false,
            ADD COLUMN payment_authorized boolean NOT NULL DEFAULT false""")
