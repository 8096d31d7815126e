"""Security: database privileges the console checks and tightens."""
