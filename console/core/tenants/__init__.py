"""Tenants: the registry, lifecycle, provisioning (single and bulk), template, schema, stats."""
