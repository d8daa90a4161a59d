"""Fixtures of the launch tests: a platform key and Moodle / Canvas registrations."""

from __future__ import annotations

import pytest

from lti_tool.settings import Settings
from testkit.lti import PlatformKey, platform_key, register_platform
from tests.loopback import allow_loopback_fakes

MOODLE_ISSUER = "http://127.0.0.1:8100"
MOODLE_CLIENT = "wIHNTU76CCVPeFh"
CANVAS_ISSUER = "https://canvas.instructure.com"
CANVAS_CLIENT = "170000000000123"
CANVAS_DEPLOYMENT = "42:8a1f4c7e2b9d0e6f3a5c8b7d1e2f4a6c9b0d3e5f"
CANVAS_AUTH = "https://sso.canvaslms.com/api/lti/authorize_redirect"
CANVAS_TOKEN = "https://sso.canvaslms.com/login/oauth2/token"
# The school's own Canvas host, where the captured launches' AGS and NRPS URLs live: an
# operator records it (`--lms-host`), Dynamic Registration from that host records it itself.
CANVAS_HOST = "example.instructure.com"


@pytest.fixture
def key() -> PlatformKey:
    return platform_key("platform")


@pytest.fixture
def moodle(db, key):
    return register_platform(db, issuer=MOODLE_ISSUER, client_id=MOODLE_CLIENT, key=key,
                             deployments=("1",), lms_kind="moodle",
                             auth_login_url=MOODLE_ISSUER + "/mod/lti/auth.php")


@pytest.fixture
def canvas(db, key):
    return register_platform(db, issuer=CANVAS_ISSUER, client_id=CANVAS_CLIENT, key=key,
                             deployments=(CANVAS_DEPLOYMENT,), lms_kind="canvas",
                             auth_login_url=CANVAS_AUTH, auth_token_url=CANVAS_TOKEN,
                             lms_hosts=(CANVAS_HOST,))


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The fakes of these tests run on loopback: the tool may call them (and nothing else)."""
    return allow_loopback_fakes(settings)
