"""Backups: the per-tenant backup store."""
