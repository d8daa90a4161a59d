"""LTI Dynamic Registration against a fake platform served over real HTTP on loopback."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registration_fakes import FakePlatform
from sqlalchemy import func, select

from lti_tool.launch.registration import create_invite, issuer_matches
from lti_tool.runtime import Runtime
from lti_tool.store.db import utcnow
from lti_tool.store.models.core import Platform, RegistrationInvite
from lti_tool.web import create_app

TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"


@pytest.fixture
def platform(serve) -> FakePlatform:
    fake = FakePlatform()
    fake.origin = serve(fake.app()).url
    return fake


@pytest.fixture
def canvas(serve) -> FakePlatform:
    fake = FakePlatform(kind="canvas", client_id="10000000000042", deployment_id="42:8a1f0c7e")
    fake.origin = serve(fake.app()).url
    return fake


def _client_with(runtime: Runtime, **changes):
    settings = dataclasses.replace(runtime.settings, **changes)
    app = create_app(runtime=Runtime(settings=settings, engine=runtime.engine,
                                     sessions=runtime.sessions))
    return app.test_client()


def _register(client, fake: FakePlatform, **extra):
    query = {"openid_configuration": fake.configuration_url,
             "registration_token": fake.registration_token, **extra}
    return client.get("/lti/register", query_string=query)


def _platform_count(db) -> int:
    return db.scalar(select(func.count()).select_from(Platform))


def test_moodle_registration_is_stored_and_the_dialog_closed(client, db, platform) -> None:
    reply = _register(client, platform)

    assert reply.status_code == 200, reply.text
    assert "org.imsglobal.lti.close" in reply.text
    assert "window.parent" in reply.text and "window.opener" in reply.text
    stored = db.scalar(select(Platform))
    assert stored.issuer == platform.origin
    assert stored.client_id == "wIHNTU76CCVPeFh"
    assert stored.auth_login_url == f"{platform.origin}/mod/lti/auth.php"
    assert stored.auth_token_url == f"{platform.origin}/mod/lti/token.php"
    assert stored.key_set_url == f"{platform.origin}/mod/lti/certs.php"
    assert stored.lms_kind == "moodle"
    assert stored.registered_via == "dynamic"
    assert [d.deployment_id for d in stored.deployments] == ["1"]


def test_what_the_tool_sends_moodle(client, platform) -> None:
    _register(client, platform)

    (sent,) = platform.received
    assert sent["headers"]["Authorization"] == "Bearer reg-token-123"
    body = sent["body"]
    assert body["application_type"] == "web"
    assert body["response_types"] == ["id_token"]
    assert body["grant_types"] == ["implicit", "client_credentials"]
    assert body["initiate_login_uri"] == "http://127.0.0.1:8000/lti/login"
    assert body["redirect_uris"] == ["http://127.0.0.1:8000/lti/launch"]
    assert body["jwks_uri"] == "http://127.0.0.1:8000/lti/jwks"
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    scopes = body["scope"].split()
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in scopes
    assert "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly" in scopes
    assert "https://purl.imsglobal.org/spec/lti-ts/scope/toolsetting" not in scopes
    config = body[TOOL_CONFIGURATION]
    assert config["domain"] == "127.0.0.1:8000"  # with the port, or Moodle refuses
    assert config["target_link_uri"] == "http://127.0.0.1:8000/lti/launch"
    assert {"iss", "sub", "name", "email"} <= set(config["claims"])
    by_type = {m["type"]: m for m in config["messages"]}
    assert by_type["LtiDeepLinkingRequest"]["placements"] == ["ContentArea"]
    assert "LtiResourceLinkRequest" in by_type
    assert config["custom_parameters"]


def test_canvas_registration(client, db, canvas) -> None:
    reply = _register(client, canvas)

    assert reply.status_code == 200, reply.text
    stored = db.scalar(select(Platform))
    assert (stored.lms_kind, stored.client_id) == ("canvas", "10000000000042")
    assert [d.deployment_id for d in stored.deployments] == ["42:8a1f0c7e"]
    assert stored.name == "Example State University"
    config = canvas.received[0]["body"][TOOL_CONFIGURATION]
    by_type = {m["type"]: m for m in config["messages"]}
    assert by_type["LtiResourceLinkRequest"]["placements"] == ["course_navigation"]
    assert by_type["LtiDeepLinkingRequest"]["placements"] == ["link_selection",
                                                              "assignment_selection"]
    assert config["https://canvas.instructure.com/lti/privacy_level"] == "public"


def test_a_second_registration_of_the_same_client_is_refused(client, db, platform) -> None:
    assert _register(client, platform).status_code == 200
    again = _register(client, platform)
    assert again.status_code == 409
    assert _platform_count(db) == 1


@pytest.mark.parametrize(("query", "needle"), [
    ({}, "openid_configuration parameter is missing"),
    ({"openid_configuration": "ftp://127.0.0.1/config"}, "absolute http(s) URL"),
    ({"openid_configuration": "http://lms.example.edu/config"}, "HTTPS"),
    ({"openid_configuration": "not a url"}, "absolute http(s) URL"),
])
def test_bad_openid_configuration_url(client, db, query, needle) -> None:
    reply = client.get("/lti/register", query_string=query,
                       headers={"Accept": "application/json"})
    assert reply.status_code == 400
    assert needle in reply.get_json()["message"]
    assert _platform_count(db) == 0


def _refused(client, db, fake, needle, status=400, **extra):
    reply = client.get("/lti/register", headers={"Accept": "application/json"},
                       query_string={"openid_configuration": fake.configuration_url,
                                     "registration_token": fake.registration_token, **extra})
    assert reply.status_code == status, reply.text
    assert needle in reply.get_json()["message"]
    assert _platform_count(db) == 0
    return reply


def test_issuer_must_match_the_configuration_origin(client, db, platform) -> None:
    platform.config_changes = {"issuer": "https://moodle.example.edu"}
    _refused(client, db, platform, "does not match the origin")
    assert platform.received == []


def test_missing_endpoint(client, db, platform) -> None:
    platform.config_changes = {"registration_endpoint": None}
    _refused(client, db, platform, "lacks registration_endpoint")


def test_platform_without_resource_link_support(client, db, platform) -> None:
    config = platform.configuration()[
        "https://purl.imsglobal.org/spec/lti-platform-configuration"]
    config["messages_supported"] = [{"type": "LtiDeepLinkingRequest"}]
    platform.config_changes = {
        "https://purl.imsglobal.org/spec/lti-platform-configuration": config}
    _refused(client, db, platform, "LtiResourceLinkRequest")


def test_platform_error_reply_is_logged_never_shown(client, db, platform, caplog) -> None:
    platform.reply_status = 400
    platform.reply_body = '{"error": "invalid_client_metadata", "secret": "internal-42"}'
    message = _refused(client, db, platform, "HTTP 400").get_json()["message"]
    assert "internal-42" not in message and "invalid_client_metadata" not in message
    assert "internal-42" in caplog.text


def test_wrong_registration_token_is_the_platforms_refusal(client, db, platform) -> None:
    reply = client.get("/lti/register", headers={"Accept": "application/json"},
                       query_string={"openid_configuration": platform.configuration_url,
                                     "registration_token": "stolen"})
    assert reply.status_code == 400
    assert "HTTP 401" in reply.get_json()["message"]
    assert _platform_count(db) == 0


def test_reply_without_client_id(client, db, platform) -> None:
    platform.reply_body = {"scope": ""}
    _refused(client, db, platform, "no client_id")


def test_unreachable_platform(client, db) -> None:
    fake = FakePlatform(origin="http://127.0.0.1:9")  # discard port: nothing listens
    _refused(client, db, fake, "Could not reach the platform")


def test_policy_off_refuses_before_contacting_anyone(runtime, db, platform) -> None:
    client = _client_with(runtime, dynamic_registration="off")
    _refused(client, db, platform, "switched off", status=403)
    assert platform.received == []


def _invite(runtime: Runtime, **changes) -> tuple[str, int]:
    with runtime.sessions() as session:
        invite = create_invite(session, runtime.settings, note="Moodle test")
        for key, value in changes.items():
            setattr(invite.row, key, value)
        session.commit()
        return invite.token, invite.row.id


def test_invite_policy_accepts_a_valid_invite_once(runtime, db, platform) -> None:
    client = _client_with(runtime, dynamic_registration="invite")
    token, invite_id = _invite(runtime)

    assert _register(client, platform, invite=token).status_code == 200
    assert db.get(RegistrationInvite, invite_id).used_at is not None
    assert _platform_count(db) == 1
    platform.client_id = "another-client"
    reply = _register(client, platform, invite=token)
    assert reply.status_code == 403
    assert "already been used" in reply.text
    assert _platform_count(db) == 1


@pytest.mark.parametrize(("invite", "needle"), [
    (None, "by invitation only"),
    ("made-up-token", "not valid"),
])
def test_invite_policy_missing_or_unknown(runtime, db, platform, invite, needle) -> None:
    client = _client_with(runtime, dynamic_registration="invite")
    extra = {"invite": invite} if invite else {}
    _refused(client, db, platform, needle, status=403, **extra)
    assert platform.received == []


def test_invite_used_or_expired(runtime, db, platform) -> None:
    client = _client_with(runtime, dynamic_registration="invite")
    used, _ = _invite(runtime, used_at=utcnow())
    expired, _ = _invite(runtime, expires_at=utcnow() - timedelta(minutes=1))
    _refused(client, db, platform, "already been used", status=403, invite=used)
    _refused(client, db, platform, "expired", status=403, invite=expired)


def test_invite_is_not_consumed_when_registration_fails(runtime, db, platform) -> None:
    client = _client_with(runtime, dynamic_registration="invite")
    token, invite_id = _invite(runtime)
    platform.reply_status = 500
    platform.reply_body = "boom"
    _refused(client, db, platform, "HTTP 500", invite=token)
    assert db.get(RegistrationInvite, invite_id).used_at is None


def test_invite_url_and_hash_only(runtime, db) -> None:
    invite = create_invite(db, runtime.settings)
    assert invite.url.startswith("http://127.0.0.1:8000/lti/register?invite=")
    assert invite.token not in invite.row.token_hash
    assert len(invite.row.token_hash) == 64


@pytest.mark.parametrize(("issuer", "url", "ok"), [
    ("http://127.0.0.1:8100", "http://127.0.0.1:8100/mod/lti/openid-configuration.php", True),
    ("https://moodle.example.edu", "https://moodle.example.edu:443/x", True),
    ("https://moodle.example.edu", "https://evil.example.com/x", False),
    ("https://moodle.example.edu", "http://moodle.example.edu/x", False),
    ("https://canvas.instructure.com",
     "https://sso.canvaslms.com/api/lti/security/openid-configuration", True),
    ("https://canvas.instructure.com",
     "https://school.instructure.com/api/lti/security/openid-configuration", True),
    ("https://canvas.instructure.com", "https://instructure.com.evil.io/x", False),
    ("https://canvas.instructure.com", "http://school.instructure.com/x", False),
])
def test_issuer_origin_rule(issuer: str, url: str, ok: bool) -> None:
    assert issuer_matches(issuer, url) is ok


@pytest.mark.parametrize("issuer", ["http://[::1", "https://moodle.example.edu:99999", 42])
def test_malformed_issuer_is_a_clear_400(client, db, platform, issuer) -> None:
    platform.config_changes = {"issuer": issuer}
    _refused(client, db, platform, "issuer")


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.dictionaries(
    st.sampled_from(["openid_configuration", "registration_token", "invite"]),
    st.one_of(st.text(max_size=300), st.text(max_size=60).map(lambda t: "http://" + t),
              st.text(max_size=60).map(lambda t: "https://[" + t))))
def test_random_registration_requests_never_500_and_store_nothing(client, db, query) -> None:
    reply = client.get("/lti/register", query_string=query)
    assert 400 <= reply.status_code < 500
    assert _platform_count(db) == 0
