"""Jobs tests: a runtime with test job functions registered next to the real ones."""

from __future__ import annotations

import pytest

from lti_tool.jobs.registry import registry
from lti_tool.jobs.runner import JobKind, Periodic, Registry
from lti_tool.store.models.core import Platform
from tests.fakelms.pytest_fixtures import *  # noqa: F403
from tests.jobs.helpers import CALLS, broken, flaky, record


@pytest.fixture
def test_registry() -> Registry:
    CALLS.clear()
    real = registry()
    kinds = dict(real.kinds) | {
        "test.record": JobKind("test.record", record),
        "test.flaky": JobKind("test.flaky", flaky, max_attempts=3, backoff_base=0),
        "test.broken": JobKind("test.broken", broken, max_attempts=2, backoff_base=0),
    }
    return Registry(kinds=kinds, periodic=[Periodic("test.record", "*/5 * * * *")])


@pytest.fixture
def platform(db) -> Platform:
    row = Platform(issuer="https://lms.example.edu", client_id="tool", name="LMS",
                   auth_login_url="https://lms.example.edu/auth",
                   auth_token_url="https://lms.example.edu/token")
    db.add(row)
    db.commit()
    return row
