"""Products, reservations, outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from alembic import op

from oms_runtime.migrations import create_messaging_tables_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE inventory.products (
            sku text PRIMARY KEY,
            name text NOT NULL,
            unit_price bigint NOT NULL CHECK (unit_price >= 0),
            currency text NOT NULL,
            on_hand integer NOT NULL,
            reserved integer NOT NULL DEFAULT 0,
            low_stock_threshold integer NOT NULL DEFAULT 0,
            reorder_quantity integer NOT NULL DEFAULT 0,
            low_stock_alerted boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            -- The last line of defence against overselling, whatever the code does.
            CONSTRAINT stock_never_negative CHECK (reserved >= 0 AND on_hand >= reserved)
        )""")
    op.execute("""
        CREATE TABLE inventory.reservations (
            order_id text PRIMARY KEY,
            status text NOT NULL,
            currency text,
            refusal_reason text,
            refused_skus text[] NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("""
        CREATE TABLE inventory.reservation_lines (
            order_id text NOT NULL REFERENCES inventory.reservations (order_id)
                ON DELETE CASCADE,
            sku text NOT NULL REFERENCES inventory.products (sku),
            quantity integer NOT NULL CHECK (quantity > 0),
            unit_price bigint NOT NULL,
            PRIMARY KEY (order_id, sku)
        )""")
    create_messaging_tables_v1("inventory")


def downgrade() -> None:
    op.execute("DROP SCHEMA inventory CASCADE")
