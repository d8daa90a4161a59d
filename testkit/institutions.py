"""The test institution: every test database starts with it (tests/conftest.py), and bench/
seeds the same."""

from __future__ import annotations

# Services that take "the only
# institution" (registrations, invites, the catalogue) work as an operator's would.
TEST_INSTITUTION = {"slug": "test-university", "name": "Test University", "country": "TR",
                    "url": "https://www.example.edu", "email": "office@example.edu"}


def base_institution(db):
    """The institution every test database starts with."""
    from lti_tool.store.institutions import find_institution
    from lti_tool.store.models.core import Institution

    row = find_institution(db, TEST_INSTITUTION["slug"])
    if row is None:  # a database the test fixtures did not make (the scale suite's own)
        row = Institution(**TEST_INSTITUTION)
        db.add(row)
        db.flush()
    return row


def institution_for_new_platform(db):
    """The test institution for the first registration a test makes, a new institution for
    each further one: tests written for one tenant per registration keep their isolation."""
    from sqlalchemy import func, select

    from lti_tool.store.models.core import Institution, Platform

    first = base_institution(db)
    if not db.scalar(select(func.count()).select_from(Platform)
                     .where(Platform.institution_id == first.id)):
        return first
    number = (db.scalar(select(func.count()).select_from(Institution)) or 0) + 1
    row = Institution(slug=f"test-university-{number}", name=f"Test University {number}",
                      country="TR", url=f"https://www{number}.example.edu")
    db.add(row)
    db.flush()
    return row
