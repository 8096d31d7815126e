"""Per-tenant backups: full and incremental, through zstd and age, with manifests."""
