"""Fixtures of the report's tests: a seeded year (tests/reports/seed.py)."""

from __future__ import annotations

import pytest

from tests.reports.seed import SeededYear, seed_year


@pytest.fixture
def year(db) -> SeededYear:
    return seed_year(db)


@pytest.fixture
def story(db, settings):
    """The pages' story course: learner1 failed, learner2 passed with a real signed badge."""
    from testkit.seed import seed_story

    return seed_story(db, settings)
