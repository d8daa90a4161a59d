"""lms package."""
