"""goconsole: operations console for GO-Commerce's multi-tenant PostgreSQL."""

__version__ = "0.1.0"
