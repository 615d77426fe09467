"""Returns: goods a customer sends back, and where their refund stands.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE orders.returns (
            id uuid PRIMARY KEY,
            order_id uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
            customer_id text NOT NULL,
            status text NOT NULL,
            status_reason text,
            reason text NOT NULL,
            lines jsonb NOT NULL,
            currency text NOT NULL,
            refund_amount bigint,
            refunded_amount bigint NOT NULL DEFAULT 0,
            return_tracking_number text,
            stock_returned boolean NOT NULL DEFAULT false,
            refund_attempt integer NOT NULL DEFAULT 0,
            deadline_at timestamptz,
            pickup_address jsonb,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        )""")
    op.execute("CREATE INDEX returns_order ON orders.returns (order_id, created_at)")
    op.execute("CREATE INDEX returns_status ON orders.returns (status, updated_at)")
    op.execute(
        "CREATE INDEX returns_deadline ON orders.returns (deadline_at) "
        "WHERE deadline_at IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP TABLE orders.returns")
