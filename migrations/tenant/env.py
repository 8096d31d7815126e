"""Alembic environment for the tenant tree, applied to one ``tenant_<key>`` schema at a time.

The caller passes ``schema`` and ``tenant_id`` in ``config.attributes``. Revisions name no
schema: everything runs under ``SET LOCAL search_path`` inside the migration transaction, and the
version table lives inside the tenant schema.
"""

import uuid

from alembic import context

from console.core.identifiers import quote_ident

VERSION_TABLE = "schema_version"
config = context.config
schema = config.attributes["schema"]
quoted = quote_ident(schema)
# Data migrations run under the tenant's own row-level-security context (FORCE RLS applies to
# the owner too).
tenant_id = str(uuid.UUID(config.attributes["tenant_id"]))

if context.is_offline_mode():
    context.configure(
        url="postgresql://",
        literal_binds=True,
        as_sql=True,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
    )
    with context.begin_transaction():
        context.execute(f"SET LOCAL search_path TO {quoted}")
        context.execute(f"SET LOCAL app.current_tenant_id TO '{tenant_id}'")
        context.run_migrations()
else:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection, version_table=VERSION_TABLE, version_table_schema=schema
    )
    with context.begin_transaction():
        connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        connection.exec_driver_sql(f"SET LOCAL search_path TO {quoted}")
        connection.exec_driver_sql(f"SET LOCAL app.current_tenant_id TO '{tenant_id}'")
        context.run_migrations()
