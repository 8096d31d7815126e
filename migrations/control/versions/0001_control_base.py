"""Control schema: tenant registry, audit log, backups, jobs, maintenance windows, migrations.

Revision ID: 0001_control_base
Revises:
Create Date: 2026-11-26
"""

from alembic import op

revision = "0001_control_base"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TYPE tenant_status AS ENUM (
    'INITIALIZING', 'ACTIVE', 'DEACTIVATING', 'INACTIVE', 'OFFBOARDING', 'ARCHIVED', 'FAILED'
);

CREATE FUNCTION goconsole_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END
$$;

CREATE FUNCTION goconsole_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TABLE tenants (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    key          text NOT NULL UNIQUE CHECK (key ~ '^[a-z][a-z0-9_]{0,55}$'),
    schema_name  varchar(63) NOT NULL UNIQUE CHECK (schema_name = 'tenant_' || key),
    display_name text NOT NULL,
    status       tenant_status NOT NULL DEFAULT 'INITIALIZING',
    cluster      text NOT NULL DEFAULT 'primary',
    created_at   timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at   timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    config       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX tenants_status_idx ON tenants (status);
CREATE TRIGGER tenants_touch_updated_at BEFORE UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION goconsole_touch_updated_at();

CREATE TABLE tenant_audit_log (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid REFERENCES tenants (id),
    action_type      varchar(50) NOT NULL,
    action_timestamp timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor            text NOT NULL,
    actor_host       text NOT NULL,
    actor_address    text NOT NULL,
    details          jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX tenant_audit_log_tenant_idx ON tenant_audit_log (tenant_id, action_timestamp DESC);
CREATE INDEX tenant_audit_log_time_idx ON tenant_audit_log (action_timestamp DESC);
CREATE TRIGGER tenant_audit_log_append_only BEFORE UPDATE OR DELETE ON tenant_audit_log
    FOR EACH ROW EXECUTE FUNCTION goconsole_refuse_change();
CREATE TRIGGER tenant_audit_log_no_truncate BEFORE TRUNCATE ON tenant_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION goconsole_refuse_change();

CREATE TABLE backups (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    kind          text NOT NULL CHECK (kind IN ('full', 'incremental')),
    parent_id     uuid REFERENCES backups (id),
    reason        text NOT NULL DEFAULT 'scheduled',
    started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at   timestamptz,
    status        text NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'succeeded', 'failed')),
    bytes         bigint CHECK (bytes >= 0),
    sha256        char(64),
    location      text,
    encrypted     boolean NOT NULL DEFAULT false,
    compressed    boolean NOT NULL DEFAULT false,
    covers_until  timestamptz,
    verified_at   timestamptz,
    verify_result text,
    error         text,
    CHECK (kind = 'full' OR parent_id IS NOT NULL)
);
CREATE INDEX backups_tenant_idx ON backups (tenant_id, started_at DESC);

CREATE TABLE job_runs (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job         text NOT NULL,
    tenant_id   uuid REFERENCES tenants (id),
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    status      text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'succeeded', 'failed', 'skipped')),
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX job_runs_job_idx ON job_runs (job, started_at DESC);

CREATE TABLE maintenance_windows (
    id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    starts_at timestamptz NOT NULL,
    ends_at   timestamptz NOT NULL,
    status    text NOT NULL DEFAULT 'planned'
              CHECK (status IN ('planned', 'running', 'completed', 'failed', 'cancelled')),
    plan      jsonb NOT NULL DEFAULT '{}'::jsonb,
    report    jsonb NOT NULL DEFAULT '{}'::jsonb,
    CHECK (ends_at > starts_at)
);

CREATE TABLE migration_runs (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    target      text NOT NULL,
    status      text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'interrupted'))
);

CREATE TABLE migration_run_tenants (
    run_id      uuid NOT NULL REFERENCES migration_runs (id) ON DELETE CASCADE,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    from_rev    text,
    to_rev      text NOT NULL,
    status      text NOT NULL
                CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'skipped_busy')),
    error       text,
    duration_ms double precision,
    PRIMARY KEY (run_id, tenant_id)
);
""")


def downgrade() -> None:
    op.execute("""
DROP TABLE migration_run_tenants, migration_runs, maintenance_windows, job_runs, backups,
    tenant_audit_log, tenants;
DROP FUNCTION goconsole_refuse_change(), goconsole_touch_updated_at();
DROP TYPE tenant_status;
""")
