"""Schema statistics history: hourly per-tenant sizes, table counts and row estimates, and the
growth read from them."""
