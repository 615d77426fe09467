"""The outbox insert no longer NOTIFYs by trigger (see the runtime's migration).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from oms_runtime.migrations import outbox_notified_by_trigger_v1, outbox_notified_by_writers_v2

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox_notified_by_writers_v2("payment")


def downgrade() -> None:
    outbox_notified_by_trigger_v1("payment")
