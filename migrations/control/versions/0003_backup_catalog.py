"""Backup catalog: what each backup covers and how to read it back.

Adds to ``backups`` the transaction snapshot and WAL position the backup was taken at (an
incremental holds every change its parent's snapshot did not see), the server version and tenant
tree revision, bytes before compression, the age recipients' fingerprints, the duration, the
whole manifest, the level of the last verification, and ``expired`` for backups retention
removed (the row stays as history; its files are gone).

Revision ID: 0003_backup_catalog
Revises: 0002_registry_interface
Create Date: 2026-12-01
"""

from alembic import op

revision = "0003_backup_catalog"
down_revision = "0002_registry_interface"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
ALTER TABLE backups
    ADD COLUMN snapshot       text,
    ADD COLUMN lsn            pg_lsn,
    ADD COLUMN server_version text,
    ADD COLUMN tree_revision  text,
    ADD COLUMN raw_bytes      bigint CHECK (raw_bytes >= 0),
    ADD COLUMN duration_ms    double precision,
    ADD COLUMN recipients     text[] NOT NULL DEFAULT '{}',
    ADD COLUMN manifest       jsonb,
    ADD COLUMN verify_level   text CHECK (verify_level IN ('checksum', 'restore')),
    ADD COLUMN expired_at     timestamptz;
ALTER TABLE backups DROP CONSTRAINT backups_status_check;
ALTER TABLE backups ADD CONSTRAINT backups_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'expired'));
CREATE INDEX backups_parent_idx ON backups (parent_id) WHERE parent_id IS NOT NULL;
""")


def downgrade() -> None:
    op.execute("""
DROP INDEX backups_parent_idx;
UPDATE backups SET status = 'succeeded' WHERE status = 'expired';
ALTER TABLE backups DROP CONSTRAINT backups_status_check;
ALTER TABLE backups ADD CONSTRAINT backups_status_check
    CHECK (status IN ('running', 'succeeded', 'failed'));
ALTER TABLE backups
    DROP COLUMN snapshot, DROP COLUMN lsn, DROP COLUMN server_version,
    DROP COLUMN tree_revision, DROP COLUMN raw_bytes, DROP COLUMN duration_ms,
    DROP COLUMN recipients, DROP COLUMN manifest, DROP COLUMN verify_level,
    DROP COLUMN expired_at;
""")
