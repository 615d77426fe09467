"""A capture per parcel: several partial captures of one authorization.

`payments.captures` holds the captures asked for (one per parcel), `keep_amount`
what a partially cancelled order keeps, `payment_operations.final` whether a capture
releases the rest of the hold, and `capture_ledger` the money each capture took, on
the day it took it (the settlement report's source). Existing payments get their one
capture (fulfillment id null) as it stands: done, in flight or failed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE payment.payments ADD COLUMN keep_amount bigint")
    op.execute("ALTER TABLE payment.payments ADD COLUMN captures jsonb NOT NULL DEFAULT '[]'")
    op.execute(
        "ALTER TABLE payment.payment_operations ADD COLUMN final boolean NOT NULL DEFAULT true"
    )
    # The one capture of a payment from before parcels, from its gateway operation.
    op.execute("""
        UPDATE payment.payments p
        SET captures = jsonb_build_array(jsonb_build_object(
            'fulfillment_id', NULL,
            'amount', CASE WHEN p.captured_amount > 0 THEN p.captured_amount
                           ELSE coalesce(c.operation_amount, p.authorized_amount) END,
            'status', CASE WHEN p.captured_amount > 0 THEN 'succeeded'
                           WHEN c.operation_status = 'failed' THEN 'failed'
                           ELSE 'pending' END,
            'final', true,
            'error', CASE WHEN p.captured_amount = 0 AND c.operation_status = 'failed'
                          THEN c.operation_error END))
        FROM (
            SELECT q.id, o.amount AS operation_amount, o.status AS operation_status,
                   o.last_error AS operation_error
            FROM payment.payments q
            LEFT JOIN payment.payment_operations o
                ON o.payment_id = q.id AND o.kind = 'capture'
            WHERE q.capture_requested OR q.captured_amount > 0) c
        WHERE c.id = p.id""")
    op.execute("""
        CREATE TABLE payment.capture_ledger (
            id text PRIMARY KEY,
            payment_id uuid NOT NULL REFERENCES payment.payments (id),
            fulfillment_id text,
            amount bigint NOT NULL,
            currency text NOT NULL,
            captured_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("CREATE INDEX capture_ledger_captured_at ON payment.capture_ledger (captured_at)")
    op.execute("CREATE INDEX capture_ledger_payment ON payment.capture_ledger (payment_id)")
    # (The colon escaped: SQLAlchemy would take ":capture" for a parameter.)
    op.execute("""
        INSERT INTO payment.capture_ledger (id, payment_id, amount, currency, captured_at)
        SELECT id::text || '\\:capture', id, captured_amount, currency,
               coalesce(captured_at, updated_at)
        FROM payment.payments WHERE captured_amount > 0""")


def downgrade() -> None:
    op.execute("DROP TABLE payment.capture_ledger")
    op.execute("ALTER TABLE payment.payment_operations DROP COLUMN final")
    op.execute("ALTER TABLE payment.payments DROP COLUMN captures")
    op.execute("ALTER TABLE payment.payments DROP COLUMN keep_amount")
