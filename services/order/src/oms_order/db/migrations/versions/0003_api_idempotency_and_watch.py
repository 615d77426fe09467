"""Idempotency keys, status notifications for `Prefer: wait`, address changes, deletion.

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
    op.execute("""
        ALTER TABLE orders.orders
            ADD COLUMN pending_address jsonb,
            ADD COLUMN deleted_at timestamptz""")
    op.execute("""
        CREATE TABLE orders.idempotency_keys (
            principal text NOT NULL,
            scope text NOT NULL,
            key text NOT NULL,
            request_hash text NOT NULL,
            order_id uuid NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (principal, scope, key)
        )""")
    op.execute("CREATE INDEX idempotency_keys_created ON orders.idempotency_keys (created_at)")
    # Whoever waits for an order to move on (Prefer: wait) is told at once, in any
    # replica, instead of polling.
    op.execute("""
        CREATE FUNCTION orders.notify_status() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('oms_order_status', NEW.id::text);
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE TRIGGER orders_status_notify AFTER UPDATE OF status ON orders.orders
        FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
        EXECUTE FUNCTION orders.notify_status()""")


def downgrade() -> None:
    op.execute("DROP TRIGGER orders_status_notify ON orders.orders")
    op.execute("DROP FUNCTION orders.notify_status()")
    op.execute("DROP TABLE orders.idempotency_keys")
    op.execute("ALTER TABLE orders.orders DROP COLUMN pending_address, DROP COLUMN deleted_at")
