"""Refunds of returns: the return a refund is for, why it failed, and whether it
failed without the gateway's answer (then it is only ever asked again under its own
idempotency key). Refunds from before are a cancellation's or staff's (no return).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE payment.refunds ADD COLUMN return_id text")
    op.execute("ALTER TABLE payment.refunds ADD COLUMN error text")
    op.execute("ALTER TABLE payment.refunds ADD COLUMN unanswered boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE payment.refunds DROP COLUMN unanswered")
    op.execute("ALTER TABLE payment.refunds DROP COLUMN error")
    op.execute("ALTER TABLE payment.refunds DROP COLUMN return_id")
