"""The outbox insert no longer NOTIFYs by trigger (see the runtime's migration).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from oms_runtime.migrations import outbox_notified_by_trigger_v1, outbox_notified_by_writers_v2

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox_notified_by_writers_v2("shipping")


def downgrade() -> None:
    outbox_notified_by_trigger_v1("shipping")
