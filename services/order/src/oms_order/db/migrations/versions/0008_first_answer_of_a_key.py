"""The first answer given under an idempotency key (a replayed cancel gets it again).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE orders.idempotency_keys ADD COLUMN response jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE orders.idempotency_keys DROP COLUMN response")
