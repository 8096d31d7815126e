"""Orders: index on placed_at for date-range reports.

Revision ID: 0004_orders_placed_at_index
Revises: 0003_unique_customer_email
Create Date: 2026-11-26
"""

from alembic import op

revision = "0004_orders_placed_at_index"
down_revision = "0003_unique_customer_email"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX idx_orders_placed_at ON orders (placed_at)")


def downgrade() -> None:
    op.execute("DROP INDEX idx_orders_placed_at")
