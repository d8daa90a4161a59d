"""Tests of the gradebook sync and its entry points."""
