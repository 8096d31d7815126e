"""The application role's only way into the registry: ``public.resolve_tenant(key)``.

A ``SECURITY DEFINER`` function (owned by the console's role, fixed ``search_path``) that
resolves one tenant key to its id, schema, status and the ``config`` fields listed in
``registry_public_fields`` (kept by ``goconsole init`` from ``[security] public_config_fields``).
It never lists tenants. EXECUTE is revoked from PUBLIC here; ``goconsole init`` grants it to the
configured application role (a name this tree cannot know) and revokes everything else.

Revision ID: 0002_registry_interface
Revises: 0001_control_base
Create Date: 2026-12-01
"""

from alembic import op

revision = "0002_registry_interface"
down_revision = "0001_control_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE registry_public_fields (
    field text PRIMARY KEY CHECK (field <> '')
);

CREATE FUNCTION resolve_tenant(tenant_key text)
RETURNS TABLE (tenant_id uuid, schema_name text, status tenant_status, public_config jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.id, t.schema_name::text, t.status,
           coalesce((SELECT jsonb_object_agg(e.key, e.value)
                     FROM jsonb_each(t.config) AS e
                     WHERE e.key IN (SELECT f.field FROM public.registry_public_fields AS f)),
                    '{}'::jsonb)
    FROM public.tenants AS t
    WHERE t.key = tenant_key
$$;
REVOKE ALL ON FUNCTION resolve_tenant(text) FROM PUBLIC;
""")


def downgrade() -> None:
    op.execute("DROP FUNCTION resolve_tenant(text); DROP TABLE registry_public_fields;")
