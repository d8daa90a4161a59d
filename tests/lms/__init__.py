"""Tests of the LMS clients against the fake LMS."""
