"""Deadlines, phased compensation and operator attention for the order saga.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        ALTER TABLE orders.orders
            ADD COLUMN cancellation_reason text,
            ADD COLUMN delivered boolean NOT NULL DEFAULT false,
            ADD COLUMN settlement_forced boolean NOT NULL DEFAULT false,
            ADD COLUMN deferred_compensations text[] NOT NULL DEFAULT '{}',
            ADD COLUMN resume_status text,
            ADD COLUMN step_attempts integer NOT NULL DEFAULT 0,
            ADD COLUMN deadline_at timestamptz""")
    op.execute("""
        CREATE INDEX orders_deadline ON orders.orders (deadline_at)
        WHERE deadline_at IS NOT NULL""")


def downgrade() -> None:
    op.execute("DROP INDEX orders.orders_deadline")
    op.execute("""
        ALTER TABLE orders.orders
            DROP COLUMN cancellation_reason, DROP COLUMN delivered,
            DROP COLUMN settlement_forced, DROP COLUMN deferred_compensations,
            DROP COLUMN resume_status, DROP COLUMN step_attempts, DROP COLUMN deadline_at""")
