"""Gateway operations remember the trace of the request that queued them.

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
    op.execute("ALTER TABLE payment.payment_operations ADD COLUMN traceparent text")


def downgrade() -> None:
    op.execute("ALTER TABLE payment.payment_operations DROP COLUMN traceparent")
