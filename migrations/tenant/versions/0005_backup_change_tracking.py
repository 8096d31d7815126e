"""Change tracking for incremental backups: each row carries the id of the transaction that last
wrote it.

``backup_xid`` (xid8) is set by a BEFORE INSERT OR UPDATE trigger on every data table, and by
default on ``deletion_log``, so an incremental backup can select exactly the rows and deletions
its parent's snapshot did not see (``NOT pg_visible_in_snapshot(backup_xid, parent)``), whatever
their timestamps say: a transaction that wrote before the parent's snapshot and committed after
it is caught. Rows written before this revision have NULL: the first backup after it is a full
(the tree revision changed), and it holds them. Indexed so an incremental reads only what changed.

Revision ID: 0005_backup_change_tracking
Revises: 0004_orders_placed_at_index
Create Date: 2026-12-01
"""

from alembic import op

revision = "0005_backup_change_tracking"
down_revision = "0004_orders_placed_at_index"
branch_labels = None
depends_on = None

DATA_TABLES = ("categories", "products", "customers", "orders", "order_items")


def upgrade() -> None:
    op.execute("""
CREATE FUNCTION mark_backup_xid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.backup_xid := pg_current_xact_id();
    RETURN NEW;
END
$$;
ALTER TABLE deletion_log ADD COLUMN backup_xid xid8;
ALTER TABLE deletion_log ALTER COLUMN backup_xid SET DEFAULT pg_current_xact_id();
CREATE INDEX idx_deletion_log_backup_xid ON deletion_log (backup_xid);
""")
    for table in DATA_TABLES:
        op.execute(f"ALTER TABLE {table} ADD COLUMN backup_xid xid8")
        op.execute(f"CREATE INDEX idx_{table}_backup_xid ON {table} (backup_xid)")
        op.execute(
            f"CREATE TRIGGER mark_backup_xid BEFORE INSERT OR UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION mark_backup_xid()"
        )


def downgrade() -> None:
    for table in DATA_TABLES:
        op.execute(f"DROP TRIGGER mark_backup_xid ON {table}")
        op.execute(f"ALTER TABLE {table} DROP COLUMN backup_xid")
    op.execute("ALTER TABLE deletion_log DROP COLUMN backup_xid")
    op.execute("DROP FUNCTION mark_backup_xid()")
