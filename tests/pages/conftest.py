"""Fixtures for the pages' tests (seeding lives in tests/pages/seed.py, shared with bench/)."""

from __future__ import annotations

import pytest

from tests.pages.seed import Course, seed_course, seed_offering


@pytest.fixture
def course(db) -> Course:
    return seed_course(db)


@pytest.fixture
def offered(db, course) -> Course:
    return seed_offering(db, course)
