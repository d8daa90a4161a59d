"""Models of the badges area (owned by its package)."""
