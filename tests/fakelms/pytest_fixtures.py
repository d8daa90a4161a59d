"""Pytest fixtures around the fake LMS, shared by tests/lms and tests/grades_sync.

Use with `from tests.fakelms.pytest_fixtures import *` in a conftest.py.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator

import pytest
from jwcrypto import jwk

from lti_tool.lms.http import LmsHttp, RetryPolicy
from lti_tool.lms.token import CACHE, publish_signing_key
from lti_tool.outbound import client_for
from lti_tool.runtime import Runtime
from lti_tool.store.keys import public_jwks
from lti_tool.store.models.core import Context, Platform, ToolKey
from testkit.fakelms import FakeLms
from testkit.fakelms.data import GRANTED_AGS, canvas_course, moodle_course
from tests.conftest import institution_for_new_platform

FAST = {"sync_retry_attempts": 3, "sync_retry_base_delay": 0.01, "sync_retry_max_delay": 0.05,
        "sync_retry_budget": 1.0, "sync_read_timeout": 2.0}
FAST_POLICY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, budget=1.0,
                          connect_timeout=2.0, read_timeout=2.0)

__all__ = ["fast_runtime", "moodle_lms", "canvas_lms", "fast_http", "make_context",
           "FAST_POLICY", "GRANTED_AGS"]


@functools.cache
def _lti_key() -> jwk.JWK:
    """One RSA key per test session: generating 2048-bit keys per test costs seconds."""
    return jwk.JWK.generate(kty="RSA", size=2048)


@pytest.fixture
def fast_runtime(runtime: Runtime) -> Iterator[Runtime]:
    """The test runtime with short LMS backoff, an `lti` key, and an empty token cache."""
    CACHE.clear()
    settings = dataclasses.replace(runtime.settings, extra={**runtime.settings.extra, **FAST})
    key = _lti_key()
    with runtime.sessions() as db:
        kid = f"lti-test-{key.thumbprint()[:8]}"
        public = dict(key.export_public(as_dict=True), kid=kid, alg="RS256", use="sig")
        db.add(ToolKey(kid=kid, purpose="lti", algorithm="RS256", public_jwk=public,
                       private_pem=key.export_to_pem(private_key=True, password=None).decode()))
        db.commit()
    yield Runtime(settings=settings, engine=runtime.engine, sessions=runtime.sessions)
    CACHE.clear()


def _tool_jwks(runtime: Runtime):
    def jwks() -> dict:
        with runtime.sessions() as db:
            keys = public_jwks(db, runtime.settings, "lti")
            db.commit()
            return keys
    return jwks


@pytest.fixture
def moodle_lms(fast_runtime: Runtime) -> Iterator[FakeLms]:
    fake = FakeLms(kind="moodle", course=moodle_course(), tool_jwks=_tool_jwks(fast_runtime))
    with fake.running():
        yield fake


@pytest.fixture
def canvas_lms(fast_runtime: Runtime) -> Iterator[FakeLms]:
    fake = FakeLms(kind="canvas", course=canvas_course(), tool_jwks=_tool_jwks(fast_runtime),
                   client_id="170000000000123")
    with fake.running():
        yield fake


@pytest.fixture
def fast_http(fast_runtime: Runtime) -> LmsHttp:
    slept: list[float] = []
    http = LmsHttp(FAST_POLICY, outbound=client_for(fast_runtime.settings), sleep=slept.append)
    http.slept = slept  # type: ignore[attr-defined]
    return http


def make_context(runtime: Runtime, fake: FakeLms, *, rest: bool = True,
                 scopes: list[str] | None = None, nrps: bool = True) -> int:
    """A platform registration pointing at `fake` and its course context; the context id."""
    publish_signing_key(runtime.sessions, runtime.settings)
    with runtime.sessions() as db:
        platform = Platform(
            institution_id=institution_for_new_platform(db).id, status="active",
            issuer=fake.base_url, client_id=fake.client_id, lms_kind=fake.kind,
            auth_login_url=fake.base_url + "/auth", auth_token_url=fake.token_url,
            rest_base_url=fake.base_url if rest else None,
            rest_token=(fake.ws_token if fake.kind == "moodle" else fake.canvas_token)
            if rest else None,
        )
        db.add(platform)
        db.flush()
        context = Context(
            platform_id=platform.id, context_id=fake.course.course_id, label="LTI101",
            ags_lineitems_url=fake.lineitems_url,
            ags_scopes=list(GRANTED_AGS if scopes is None else scopes),
            nrps_url=fake.memberships_url if nrps else None, nrps_versions=["2.0"],
        )
        db.add(context)
        db.commit()
        return context.id
