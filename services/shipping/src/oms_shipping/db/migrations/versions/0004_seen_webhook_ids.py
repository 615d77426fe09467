"""Carrier webhook ids already acted on (Standard Webhooks replay protection).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE shipping.seen_webhooks (
            webhook_id text PRIMARY KEY,
            shipment_id uuid NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("CREATE INDEX seen_webhooks_received_at ON shipping.seen_webhooks (received_at)")


def downgrade() -> None:
    op.execute("DROP TABLE shipping.seen_webhooks")
