"""Tenant schema: catalogue, customers, orders, deletion log, triggers and forced RLS.

Runs with ``search_path`` set to the tenant schema; names no schema itself. The tenant id for
the row-level-security policy comes from ``config.attributes["tenant_id"]``.

Revision ID: 0001_tenant_base
Revises:
Create Date: 2026-11-26
"""

import uuid

from alembic import context, op

revision = "0001_tenant_base"
down_revision = None
branch_labels = None
depends_on = None

DATA_TABLES = ("categories", "products", "customers", "orders", "order_items")
RLS_TABLES = (*DATA_TABLES, "deletion_log")


def upgrade() -> None:
    tenant_id = str(uuid.UUID(context.config.attributes["tenant_id"]))
    op.execute("""
CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END
$$;

CREATE FUNCTION log_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('INSERT INTO %I.deletion_log (table_name, row_id) VALUES ($1, $2)',
                   TG_TABLE_SCHEMA)
        USING TG_TABLE_NAME, OLD.id;
    RETURN OLD;
END
$$;

CREATE TABLE categories (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL UNIQUE,
    parent_id  uuid REFERENCES categories (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE products (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sku         text NOT NULL UNIQUE,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    price       numeric(12, 2) NOT NULL CHECK (price >= 0),
    category_id uuid REFERENCES categories (id) ON DELETE SET NULL,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_products_category ON products (category_id);

CREATE TABLE customers (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email      text NOT NULL,
    full_name  text NOT NULL,
    status     text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'INACTIVE', 'BLOCKED')),
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_customers_email ON customers (email);
CREATE INDEX idx_active_customers ON customers (id) WHERE status = 'ACTIVE';

CREATE TABLE orders (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id uuid NOT NULL REFERENCES customers (id),
    status      text NOT NULL DEFAULT 'PENDING'
                CHECK (status IN ('PENDING', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED',
                                  'REFUNDED')),
    total       numeric(12, 2) NOT NULL DEFAULT 0 CHECK (total >= 0),
    placed_at   timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_at  timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_orders_customer ON orders (customer_id);

CREATE TABLE order_items (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id   uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id uuid NOT NULL REFERENCES products (id),
    quantity   integer NOT NULL CHECK (quantity > 0),
    unit_price numeric(12, 2) NOT NULL CHECK (unit_price >= 0),
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_order_items_order ON order_items (order_id);
CREATE INDEX idx_order_items_product ON order_items (product_id);

CREATE TABLE deletion_log (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    table_name text NOT NULL,
    row_id     uuid NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX idx_deletion_log_deleted_at ON deletion_log (deleted_at);
""")
    for table in DATA_TABLES:
        op.execute(
            f"CREATE TRIGGER set_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )
        op.execute(
            f"CREATE TRIGGER log_deletion AFTER DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION log_deletion()"
        )
    for table in RLS_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        check = f"current_setting('app.current_tenant_id', true) = '{tenant_id}'"
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} USING ({check}) WITH CHECK ({check})"
        )


def downgrade() -> None:
    op.execute(
        "DROP TABLE deletion_log, order_items, orders, customers, products, categories; "
        "DROP FUNCTION log_deletion(), set_updated_at();"
    )
