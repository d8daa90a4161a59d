"""grades package."""
