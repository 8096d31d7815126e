"""Migrations: plan and run tenant migrations, landed records, the alembic tree."""
