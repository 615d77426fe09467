"""Cancelled and failed shipments.

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
    # A cancellation that overtakes the creation is remembered without an address.
    op.execute("ALTER TABLE shipping.shipments ALTER COLUMN address DROP NOT NULL")
    op.execute("ALTER TABLE shipping.shipments ADD COLUMN failure_reason text")


def downgrade() -> None:
    op.execute("ALTER TABLE shipping.shipments DROP COLUMN failure_reason")
    op.execute("ALTER TABLE shipping.shipments ALTER COLUMN address SET NOT NULL")
