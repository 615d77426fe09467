"""Customer returns: the damaged units counted per (SKU, location) and in the ledger,
and the returns whose goods were booked (each once).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        ALTER TABLE inventory.stock
            ADD COLUMN damaged integer NOT NULL DEFAULT 0,
            ADD CONSTRAINT damaged_never_negative CHECK (damaged >= 0)""")
    op.execute("""
        ALTER TABLE inventory.stock_movements
            ADD COLUMN damaged_delta integer NOT NULL DEFAULT 0""")
    op.execute("""
        CREATE TABLE inventory.stock_returns (
            return_id text PRIMARY KEY,
            order_id text NOT NULL,
            lines jsonb NOT NULL,
            booked_at timestamptz NOT NULL DEFAULT now()
        )""")


def downgrade() -> None:
    op.execute("DROP TABLE inventory.stock_returns")
    op.execute("ALTER TABLE inventory.stock_movements DROP COLUMN damaged_delta")
    op.execute("""
        ALTER TABLE inventory.stock
            DROP CONSTRAINT damaged_never_negative,
            DROP COLUMN damaged""")
