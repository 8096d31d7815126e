"""Restores: the ``RESTORING`` tenant status, and the status a tenant returns to afterwards.

``status_before_restore`` holds the status a tenant had when a restore (or a rollback) started,
so that a rerun after the console stopped mid-way, or ``--discard``, puts it back; NULL when no
restore is under way.

Revision ID: 0004_restoring_status
Revises: 0003_backup_catalog
Create Date: 2026-12-08
"""

from alembic import op

revision = "0004_restoring_status"
down_revision = "0003_backup_catalog"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TYPE tenant_status ADD VALUE IF NOT EXISTS 'RESTORING'")
    op.execute("ALTER TABLE tenants ADD COLUMN status_before_restore tenant_status")


def downgrade() -> None:
    # An enum value cannot be dropped: RESTORING tenants go back, the value stays unused.
    op.execute(
        "UPDATE tenants SET status = status_before_restore "
        "WHERE status = 'RESTORING' AND status_before_restore IS NOT NULL"
    )
    op.execute("ALTER TABLE tenants DROP COLUMN status_before_restore")
