"""Re-authorization of a changed order total.

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
    op.execute("""
        ALTER TABLE payment.payments
            ADD COLUMN pending_reauthorization bigint,
            ADD COLUMN reauthorizations integer NOT NULL DEFAULT 0""")


def downgrade() -> None:
    op.execute("""
        ALTER TABLE payment.payments
            DROP COLUMN pending_reauthorization, DROP COLUMN reauthorizations""")
