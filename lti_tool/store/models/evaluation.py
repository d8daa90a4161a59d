"""Models of the evaluation area (owned by its package)."""
