"""Scheduler run history: ``job_runs`` gets the time a run was scheduled for, the host and
leader that ran it, how it was started, its outcome (``status`` renamed; adds ``missed``), the
per-tenant failures and a one-line summary.

Revision ID: 0005_scheduler_runs
Revises: 0004_restoring_status
Create Date: 2026-12-08
"""

from alembic import op

revision = "0005_scheduler_runs"
down_revision = "0004_restoring_status"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
ALTER TABLE job_runs RENAME COLUMN status TO outcome;
ALTER TABLE job_runs DROP CONSTRAINT job_runs_status_check;
ALTER TABLE job_runs ADD CONSTRAINT job_runs_outcome_check
    CHECK (outcome IN ('running', 'succeeded', 'failed', 'skipped', 'missed'));
ALTER TABLE job_runs
    ADD COLUMN scheduled_at timestamptz,
    ADD COLUMN trigger      text NOT NULL DEFAULT 'schedule'
                            CHECK (trigger IN ('schedule', 'catch-up', 'manual')),
    ADD COLUMN host         text NOT NULL DEFAULT '',
    ADD COLUMN leader       text NOT NULL DEFAULT '',
    ADD COLUMN failures     jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN summary      text NOT NULL DEFAULT '';
CREATE INDEX job_runs_scheduled_idx ON job_runs (job, scheduled_at);
""")


def downgrade() -> None:
    op.execute("""
DROP INDEX job_runs_scheduled_idx;
ALTER TABLE job_runs
    DROP COLUMN scheduled_at, DROP COLUMN trigger, DROP COLUMN host, DROP COLUMN leader,
    DROP COLUMN failures, DROP COLUMN summary;
DELETE FROM job_runs WHERE outcome = 'missed';
ALTER TABLE job_runs DROP CONSTRAINT job_runs_outcome_check;
ALTER TABLE job_runs RENAME COLUMN outcome TO status;
ALTER TABLE job_runs ADD CONSTRAINT job_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'skipped'));
""")
