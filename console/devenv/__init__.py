"""Local servers for `goconsole demo`, tests and bench; production code never imports it."""
