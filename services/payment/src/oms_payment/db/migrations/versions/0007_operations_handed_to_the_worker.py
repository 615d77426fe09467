"""Gateway operations no longer NOTIFY the workers by trigger.

An operation is leased to the process that queues it and handed to that process's
gateway worker on commit; the other workers' sweeps find the rest. A notification
woke every worker (and every other listening connection of the database) for work
none of them could take.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP TRIGGER payment_operations_notify ON payment.payment_operations")
    op.execute("DROP FUNCTION payment.notify_operations()")


def downgrade() -> None:
    op.execute("""
        CREATE FUNCTION payment.notify_operations() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('oms_payment_operations', '');
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE TRIGGER payment_operations_notify AFTER INSERT ON payment.payment_operations
        FOR EACH STATEMENT EXECUTE FUNCTION payment.notify_operations()""")
