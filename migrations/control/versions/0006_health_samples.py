"""Health samples: one row per health check per recorded run (value, state, detail), so the
Health screen's graphs and each check's "since when" survive restarts. Retention
(``health.sample_retention_hours``) deletes old rows as new ones are written.

Revision ID: 0006_health_samples
Revises: 0005_scheduler_runs
Create Date: 2026-12-02
"""

from alembic import op

revision = "0006_health_samples"
down_revision = "0005_scheduler_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE health_samples (
    taken_at timestamptz      NOT NULL,
    check_name text           NOT NULL,
    state    text             NOT NULL CHECK (state IN ('OK', 'WARN', 'CRIT', 'UNKNOWN')),
    value    double precision,
    detail   text             NOT NULL DEFAULT '',
    PRIMARY KEY (check_name, taken_at)
);
CREATE INDEX health_samples_taken_idx ON health_samples (taken_at);
""")


def downgrade() -> None:
    op.execute("DROP TABLE health_samples")
