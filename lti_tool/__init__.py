"""Micro-credential LTI 1.3 Advantage tool."""

__version__ = "0.1.0"
