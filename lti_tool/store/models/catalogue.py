"""Models of the catalogue area (owned by its package)."""
