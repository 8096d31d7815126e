"""Pools: PgBouncer admin client, include file, monitor, rates, rows, log and service."""
