"""Refunds, deferred voids, and operation references.

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
    op.execute(
        "ALTER TABLE payment.payments ADD COLUMN capture_requested boolean NOT NULL DEFAULT false"
    )
    op.execute("ALTER TABLE payment.payment_operations ADD COLUMN reference text")
    op.execute("""
        CREATE TABLE payment.refunds (
            id text PRIMARY KEY,
            payment_id uuid NOT NULL REFERENCES payment.payments (id),
            amount bigint NOT NULL CHECK (amount > 0),
            reason text NOT NULL,
            status text NOT NULL DEFAULT 'pending',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("CREATE INDEX refunds_payment ON payment.refunds (payment_id)")


def downgrade() -> None:
    op.execute("DROP TABLE payment.refunds")
    op.execute("ALTER TABLE payment.payment_operations DROP COLUMN reference")
    op.execute("ALTER TABLE payment.payments DROP COLUMN capture_requested")
