"""Return parcels: the label a customer sends goods back with, and what arrived.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE shipping.returns (
            id text PRIMARY KEY,
            order_id text NOT NULL,
            status text NOT NULL,
            return_tracking_number text UNIQUE,
            lines jsonb NOT NULL,
            received jsonb NOT NULL DEFAULT '[]'::jsonb,
            pickup_address jsonb,
            received_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("CREATE INDEX returns_order_id ON shipping.returns (order_id)")
    op.execute("CREATE INDEX returns_status ON shipping.returns (status, id)")


def downgrade() -> None:
    op.execute("DROP TABLE shipping.returns")
