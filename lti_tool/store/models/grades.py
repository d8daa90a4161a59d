"""Models of the grades area (owned by its package)."""
