"""The registration service: validation, (issuer, client_id) keys, deployments."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lti_tool.errors import BadRequest, Conflict, LaunchError
from lti_tool.launch.platforms import (
    PlatformSpec,
    accept_deployment,
    find_platform,
    platforms_for_issuer,
    register_platform,
    spec_from_mapping,
    update_platform,
    url_problem,
)
from lti_tool.store.models.core import Deployment

CANVAS = dict(issuer="https://canvas.instructure.com", lms_kind="canvas",
              auth_login_url="https://sso.canvaslms.com/api/lti/authorize_redirect",
              auth_token_url="https://sso.canvaslms.com/login/oauth2/token",
              key_set_url="https://sso.canvaslms.com/api/lti/security/jwks")


def test_same_issuer_different_client_ids_are_two_registrations(db) -> None:
    school_a = register_platform(db, PlatformSpec(client_id="100", **CANVAS))
    school_b = register_platform(db, PlatformSpec(client_id="200", **CANVAS))
    assert school_a.id != school_b.id
    assert find_platform(db, CANVAS["issuer"], "200") is school_b
    assert len(platforms_for_issuer(db, CANVAS["issuer"])) == 2
    with pytest.raises(Conflict):
        register_platform(db, PlatformSpec(client_id="100", **CANVAS))


def test_update_keeps_the_key_unique(db) -> None:
    register_platform(db, PlatformSpec(client_id="100", **CANVAS))
    other = register_platform(db, PlatformSpec(client_id="200", **CANVAS))
    with pytest.raises(Conflict):
        update_platform(db, other, PlatformSpec(client_id="100", **CANVAS))
    renamed = update_platform(db, other, PlatformSpec(client_id="200", name="School B",
                                                      deployments=["9:x"], **CANVAS))
    assert renamed.name == "School B" and [d.deployment_id for d in renamed.deployments] == ["9:x"]


@pytest.mark.parametrize(("value", "needle"), [
    ("", "required"), ("ftp://x.example/", "absolute http(s)"), ("http://lms.example/", "HTTPS"),
    ("http://[::1", "well-formed"), ("https://x.example:99999/", "well-formed"),
    ("https://x.example/a b", "spaces"), ("https://x.example/#frag", "fragment"),
])
def test_url_problems(value: str, needle: str) -> None:
    assert needle in url_problem(value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8100/mod/lti/auth.php",
                                 "http://localhost/x", "https://moodle.example.edu/x?y=1"])
def test_acceptable_urls(url: str) -> None:
    assert url_problem(url) is None


def test_every_problem_is_reported_at_once() -> None:
    spec = spec_from_mapping({"issuer": "moodle", "client_id": "", "auth_login_url": "",
                              "auth_token_url": "https://x.example/t", "lms_kind": "blackboard"})
    with pytest.raises(BadRequest) as caught:
        spec.validate()
    assert set(caught.value.details) == {"issuer", "client_id", "auth_login_url", "key_set_url",
                                         "lms_kind"}


def test_deployments_are_accepted_recorded_or_refused(db) -> None:
    platform = register_platform(db, PlatformSpec(client_id="100", deployments=["1:a"],
                                                  **CANVAS))
    assert accept_deployment(db, platform, "1:a").auto_accepted is False
    with pytest.raises(LaunchError, match="'2:b' is not registered"):
        accept_deployment(db, platform, "2:b")
    platform.auto_accept_deployments = True
    recorded = accept_deployment(db, platform, "2:b")
    assert recorded.auto_accepted is True and recorded.enabled is True
    assert accept_deployment(db, platform, "2:b").id == recorded.id
    recorded.enabled = False
    with pytest.raises(LaunchError, match="disabled"):
        accept_deployment(db, platform, "2:b")
    assert len(db.scalars(select(Deployment)).all()) == 2
