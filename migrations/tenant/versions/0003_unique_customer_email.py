"""Customer e-mail addresses: normalised to lower case and unique per tenant.

A data migration followed by a constraint: a tenant holding two customers whose addresses
differ only in case or surrounding spaces fails here (and is rolled back) until one is fixed.

Revision ID: 0003_unique_customer_email
Revises: 0002_customer_contact
Create Date: 2026-11-26
"""

from alembic import op

revision = "0003_unique_customer_email"
down_revision = "0002_customer_contact"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE customers SET email = lower(btrim(email)) WHERE email <> lower(btrim(email))"
    )
    op.execute("DROP INDEX idx_customers_email")
    op.execute("CREATE UNIQUE INDEX idx_customers_email ON customers (email)")


def downgrade() -> None:
    op.execute("DROP INDEX idx_customers_email")
    op.execute("CREATE INDEX idx_customers_email ON customers (email)")
