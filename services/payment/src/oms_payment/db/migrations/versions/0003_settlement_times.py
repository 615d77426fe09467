"""When money was captured and refunds completed, for the settlement report.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE payment.payments ADD COLUMN captured_at timestamptz")
    op.execute("UPDATE payment.payments SET captured_at = updated_at WHERE captured_amount > 0")
    op.execute("ALTER TABLE payment.refunds ADD COLUMN completed_at timestamptz")
    op.execute("UPDATE payment.refunds SET completed_at = updated_at WHERE status = 'succeeded'")
    op.execute("""
        CREATE INDEX payments_captured_at ON payment.payments (captured_at)
        WHERE captured_at IS NOT NULL""")


def downgrade() -> None:
    op.execute("DROP INDEX payment.payments_captured_at")
    op.execute("ALTER TABLE payment.refunds DROP COLUMN completed_at")
    op.execute("ALTER TABLE payment.payments DROP COLUMN captured_at")
