"""Alembic environment for the control tree (the ``public`` schema: registry, audit, jobs)."""

from alembic import context

VERSION_TABLE = "schema_version"
config = context.config

if context.is_offline_mode():
    context.configure(
        url="postgresql://", literal_binds=True, version_table=VERSION_TABLE, as_sql=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes["connection"]
    context.configure(connection=connection, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()
