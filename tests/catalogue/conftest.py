"""Generic helpers for tests that need people with sessions: platforms, courses, callers.

`people.session(role, ...)` makes a Platform/Context/Person as needed, starts a real session
(`lti_tool.web.auth.start_session`) and returns a `Caller` that sends its token in the
`X-LTI-Tool-Session` header and the matching CSRF token on POSTs.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from lti_tool.store.models.core import Context, Membership, Person, Platform, WebSession
from lti_tool.web.auth import CSRF_HEADER, SESSION_HEADER, start_session, token_hash
from tests.conftest import institution_for_new_platform

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"
_serial = count(1)


def make_platform(db, issuer: str | None = None) -> Platform:
    issuer = issuer or f"https://lms{next(_serial)}.example.edu"
    platform = Platform(institution_id=institution_for_new_platform(db).id, status="active",
                        issuer=issuer, client_id="tool-client", name="Test LMS",
                        lms_kind="moodle", auth_login_url=issuer + "/auth",
                        auth_token_url=issuer + "/token", key_set_url=issuer + "/jwks")
    db.add(platform)
    db.flush()
    return platform


def make_context(db, platform: Platform, context_id: str = "course-1",
                 title: str = "IE 310 Engineering Project Management") -> Context:
    context = Context(platform_id=platform.id, context_id=context_id, label=context_id,
                      title=title)
    db.add(context)
    db.flush()
    return context


@dataclass
class Caller:
    """A test client acting as one session."""

    client: object
    token: str
    csrf: str
    platform_id: int
    person_id: int
    context_id: int | None

    def _headers(self, extra: dict | None) -> dict:
        return {SESSION_HEADER: self.token, CSRF_HEADER: self.csrf, "Accept": "text/html",
                **(extra or {})}

    def get(self, path: str, **kwargs):
        return self.client.get(path, headers=self._headers(kwargs.pop("headers", None)),
                               **kwargs)

    def post(self, path: str, data=None, **kwargs):
        """POST form fields (a dict, or a list of pairs when names repeat)."""
        return self.client.post(path, data=MultiDict(data or {}),
                                headers=self._headers(kwargs.pop("headers", None)), **kwargs)


class People:
    """Makes sessions for any role on any platform and course."""

    def __init__(self, db, client) -> None:
        self.db = db
        self.client = client

    def session(self, role: str, *, platform: Platform | None = None,
                context: Context | None = None, with_context: bool = True) -> Caller:
        platform = platform or make_platform(self.db)
        if context is None and with_context:
            context = make_context(self.db, platform, f"course-{next(_serial)}")
        person = Person(platform_id=platform.id, sub=f"{role}-{next(_serial)}",
                        name=f"{role.title()} Example", is_admin=role == "admin")
        self.db.add(person)
        self.db.flush()
        if context is not None:
            self.db.add(Membership(context_id=context.id, person_id=person.id, role=role))
        token = start_session(self.db, platform_id=platform.id, person_id=person.id,
                              context_id=context.id if context else None,
                              resource_link_id=None, role=role)
        secret = self.db.scalar(select(WebSession.csrf_secret).where(
            WebSession.token_hash == token_hash(token)))
        self.db.commit()
        csrf = hmac.new(secret.encode(), b"csrf", hashlib.sha256).hexdigest()
        return Caller(self.client, token, csrf, platform.id, person.id,
                      context.id if context else None)


@pytest.fixture
def people(db, client) -> People:
    return People(db, client)


@pytest.fixture
def platform(db) -> Platform:
    platform = make_platform(db)
    db.commit()
    return platform
