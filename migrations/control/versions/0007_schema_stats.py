"""Schema statistics history: one row per tenant per hourly collection.

Each collection writes every tenant schema's table count, total size (tables, indexes, TOAST)
and row estimate, with the row estimate of each table as a JSON object, all stamped with the
same ``collected_at``. The primary key leads with ``collected_at``: reading the newest run, the
run a week before it and the retention cut are index range scans, whatever the history holds.

Revision ID: 0007_schema_stats
Revises: 0006_health_samples
Create Date: 2026-12-02
"""

from alembic import op

revision = "0007_schema_stats"
down_revision = "0006_health_samples"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE schema_stats (
    collected_at   timestamptz NOT NULL,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    tables         integer NOT NULL CHECK (tables >= 0),
    total_bytes    bigint NOT NULL CHECK (total_bytes >= 0),
    estimated_rows bigint NOT NULL CHECK (estimated_rows >= 0),
    table_rows     jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (collected_at, tenant_id)
);
CREATE INDEX schema_stats_tenant_idx ON schema_stats (tenant_id, collected_at);
""")


def downgrade() -> None:
    op.execute("DROP TABLE schema_stats;")
