from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from lti_tool.lms.http import LmsHttp
from lti_tool.lms.service import BearerClient
from lti_tool.lms.token import ServiceTokens
from lti_tool.runtime import Runtime
from lti_tool.settings import Settings
from lti_tool.store.models.core import Context, Platform
from testkit.fakelms import FakeLms
from tests.fakelms.pytest_fixtures import *  # noqa: F403
from tests.fakelms.pytest_fixtures import make_context
from tests.loopback import allow_loopback_fakes


@dataclass
class Services:
    db: Session
    platform: Platform
    context: Context
    http: LmsHttp
    tokens: ServiceTokens
    bearer: BearerClient
    fake: FakeLms


def _services(runtime: Runtime, fake: FakeLms, http: LmsHttp) -> Iterator[Services]:
    context_id = make_context(runtime, fake)
    db = runtime.sessions()
    context = db.get(Context, context_id)
    platform = db.get(Platform, context.platform_id)
    tokens = ServiceTokens(db, runtime.settings, platform, http)
    yield Services(db, platform, context, http, tokens, BearerClient(http, tokens), fake)
    db.close()


@pytest.fixture
def moodle(fast_runtime: Runtime, moodle_lms: FakeLms, fast_http: LmsHttp) -> Iterator[Services]:
    yield from _services(fast_runtime, moodle_lms, fast_http)


@pytest.fixture
def canvas(fast_runtime: Runtime, canvas_lms: FakeLms, fast_http: LmsHttp) -> Iterator[Services]:
    yield from _services(fast_runtime, canvas_lms, fast_http)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The fakes of these tests run on loopback: the tool may call them (and nothing else)."""
    return allow_loopback_fakes(settings)
