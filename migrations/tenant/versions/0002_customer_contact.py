"""Customers: phone number and marketing consent.

Revision ID: 0002_customer_contact
Revises: 0001_tenant_base
Create Date: 2026-11-26
"""

from alembic import op

revision = "0002_customer_contact"
down_revision = "0001_tenant_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE customers ADD COLUMN phone text")
    op.execute("ALTER TABLE customers ADD COLUMN marketing_opt_in boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE customers DROP COLUMN marketing_opt_in, DROP COLUMN phone")
