"""The Office's platform pages: role checks, CSRF, inline validation, deployment toggles."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import html
import re

import pytest
from sqlalchemy import func, select

from lti_tool.launch.platforms import PlatformSpec, register_platform
from lti_tool.runtime import Runtime
from lti_tool.store.models.core import (
    AuditEntry,
    Context,
    Deployment,
    Person,
    Platform,
    WebSession,
)
from lti_tool.web import create_app
from lti_tool.web.auth import SESSION_HEADER, start_session, token_hash
from tests.conftest import institution_for_new_platform

FORM = {"lms_kind": "canvas", "name": "Canvas cloud", "issuer": "https://canvas.instructure.com",
        "client_id": "10000000000042",
        "auth_login_url": "https://sso.canvaslms.com/api/lti/authorize_redirect",
        "auth_token_url": "https://sso.canvaslms.com/login/oauth2/token",
        "key_set_url": "https://sso.canvaslms.com/api/lti/security/jwks",
        "deployments": "42:abc, 43:def", "auto_accept_deployments": "on"}


class Browser:
    """A test client that carries one launch session and its CSRF token."""

    def __init__(self, client, token: str, csrf: str) -> None:
        self.client, self.headers, self.csrf = client, {SESSION_HEADER: token}, csrf

    def get(self, path: str):
        return self.client.get(path, headers=self.headers)

    def post(self, path: str, data: dict | None = None, *, csrf: bool = True):
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.csrf
        return self.client.post(path, data=form, headers=self.headers)


def _session(db, client, role: str) -> Browser:
    home = register_platform(db, PlatformSpec(
        issuer="http://127.0.0.1:8100", client_id=f"home-{role}",
        auth_login_url="http://127.0.0.1:8100/mod/lti/auth.php",
        auth_token_url="http://127.0.0.1:8100/mod/lti/token.php",
        key_set_url="http://127.0.0.1:8100/mod/lti/certs.php", lms_kind="moodle",
        deployments=["1"]))
    return _login(db, client, home, role)


def _login(db, client, platform: Platform, role: str) -> Browser:
    person = Person(platform_id=platform.id, sub="3", name="Office")
    db.add(person)
    db.flush()
    token = start_session(db, platform_id=platform.id, person_id=person.id, context_id=None,
                          resource_link_id=None, role=role)
    db.commit()
    secret = db.scalar(select(WebSession.csrf_secret)
                       .where(WebSession.token_hash == token_hash(token)))
    return Browser(client, token, hmac.new(secret.encode(), b"csrf", hashlib.sha256).hexdigest())


@pytest.fixture
def office(db, client) -> Browser:
    return _session(db, client, "admin")


def _count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def test_only_the_office_may_enter(db, client) -> None:
    assert client.get("/admin/platforms/").status_code == 401
    instructor = _session(db, client, "instructor")
    assert instructor.get("/admin/platforms/").status_code == 403
    assert instructor.post("/admin/platforms/", FORM).status_code == 403
    assert _count(db, Platform) == 1


def test_list_shows_registrations_and_deployments(office) -> None:
    page = office.get("/admin/platforms/")
    assert page.status_code == 200
    assert "home-admin" in page.text and "http://127.0.0.1:8100" in page.text
    assert 'name="csrf_token"' in page.text


def test_add_platform(office, db) -> None:
    reply = office.post("/admin/platforms/", FORM)
    assert reply.status_code == 303
    added = db.scalar(select(Platform).where(Platform.client_id == "10000000000042"))
    assert added.lms_kind == "canvas" and added.auto_accept_deployments is True
    assert sorted(d.deployment_id for d in added.deployments) == ["42:abc", "43:def"]
    assert db.scalar(select(AuditEntry.action).where(AuditEntry.platform_id == added.id)) == (
        "platform.add")
    detail = office.get(reply.headers["Location"])
    assert detail.status_code == 200 and "42:abc" in detail.text


def test_add_shows_problems_inline_and_stores_nothing(office, db) -> None:
    bad = {**FORM, "auth_token_url": "http://sso.canvaslms.com/login/oauth2/token",
           "client_id": ""}
    reply = office.post("/admin/platforms/", bad)
    assert reply.status_code == 400
    assert 'id="e-auth_token_url"' in reply.text and "https://" in reply.text
    assert 'id="e-client_id"' in reply.text
    assert 'value="https://canvas.instructure.com"' in reply.text  # the input is kept
    assert _count(db, Platform) == 1


def test_the_registration_form_says_its_problems_in_turkish(office, db) -> None:
    bad = {**FORM, "auth_token_url": "http://sso.canvaslms.com/login/oauth2/token",
           "client_id": "", "issuer": "not a url"}
    reply = office.post("/admin/platforms/?lang=tr", bad)
    assert reply.status_code == 400
    errors = dict(re.findall(r'<span id="e-(\w+)" class="error-message">([^<]*)</span>',
                             html.unescape(reply.text)))
    assert errors == {
        "issuer": "Yayıncı (platform kimliği): Başında https:// olan tam bir adres verin.",
        "client_id": "İstemci kimliği: Bu alan zorunludur.",
        "auth_token_url": "Erişim belirteci URL’si: https:// ile başlayan bir adres kullanın "
                          "(düz http:// yalnızca bu bilgisayarın kendi adreslerinde çalışır).",
    }
    assert "must" not in reply.text and "is required" not in reply.text
    office.post("/admin/platforms/", FORM)
    again = office.post("/admin/platforms/?lang=tr", FORM)
    assert again.status_code == 409 and "İstemci kimliği: Başka bir kayıt" in html.unescape(
        again.text)
    assert _count(db, Platform) == 2


def test_duplicate_is_a_conflict(office, db) -> None:
    office.post("/admin/platforms/", FORM)
    again = office.post("/admin/platforms/", FORM)
    assert again.status_code == 409 and "already uses this client ID" in again.text
    assert _count(db, Platform) == 2


def test_an_issuer_of_another_institution_is_refused_at_the_issuer_field(office, db) -> None:
    other = institution_for_new_platform(db)  # the office exists: a new institution
    register_platform(db, PlatformSpec(
        issuer="https://moodle.other.example", client_id="theirs",
        auth_login_url="https://moodle.other.example/auth",
        auth_token_url="https://moodle.other.example/token",
        key_set_url="https://moodle.other.example/jwks", lms_kind="moodle"),
        institution_id=other.id)
    db.commit()
    before = _count(db, Platform)
    reply = office.post("/admin/platforms/?lang=tr", {
        **FORM, "issuer": "https://moodle.other.example", "client_id": "mine",
        "auth_token_url": "https://moodle.other.example/token2"})
    assert reply.status_code == 409
    page = html.unescape(reply.text)
    assert 'id="e-issuer"' in page and "başka bir kurumun kaydına ait" in page
    assert "already belongs" not in page and _count(db, Platform) == before


def test_missing_csrf_token_changes_nothing(office, db) -> None:
    assert office.post("/admin/platforms/", FORM, csrf=False).status_code == 403
    assert _count(db, Platform) == 1


def test_disable_and_enable_a_deployment_and_toggle_auto_accept(office, db) -> None:
    platform = db.scalar(select(Platform))
    deployment = platform.deployments[0]
    url = f"/admin/platforms/{platform.id}/deployments/{deployment.id}"
    assert office.post(url, {"enabled": "0"}).status_code == 303
    db.expire_all()
    assert db.get(Deployment, deployment.id).enabled is False
    assert office.post(url, {"enabled": "1"}).status_code == 303
    db.expire_all()
    assert db.get(Deployment, deployment.id).enabled is True
    assert office.post(url, {"enabled": "maybe"}).status_code == 400
    assert office.post(f"/admin/platforms/{platform.id}/deployments/999",
                       {"enabled": "0"}).status_code == 404

    assert office.post(f"/admin/platforms/{platform.id}/auto-accept",
                       {"enabled": "1"}).status_code == 303
    db.expire_all()
    assert db.get(Platform, platform.id).auto_accept_deployments is True


def test_add_a_deployment(office, db) -> None:
    platform = db.scalar(select(Platform))
    assert office.post(f"/admin/platforms/{platform.id}/deployments",
                       {"deployment_id": "7"}).status_code == 303
    assert office.post(f"/admin/platforms/{platform.id}/deployments",
                       {"deployment_id": ""}).status_code == 400
    db.expire_all()
    assert sorted(d.deployment_id for d in db.get(Platform, platform.id).deployments) == [
        "1", "7"]


def test_remove_needs_confirmation_when_data_is_stored(office, db) -> None:
    office.post("/admin/platforms/", FORM)
    other = db.scalar(select(Platform).where(Platform.client_id == "10000000000042"))
    db.add(Context(platform_id=other.id, context_id="c1"))
    db.commit()
    refused = office.post(f"/admin/platforms/{other.id}/remove")
    assert refused.status_code == 409
    assert _count(db, Platform) == 2
    # Confirmed, it is still refused: the audit entries about the registration refer to it
    # (ON DELETE RESTRICT, issue 15), so it can only be disabled; nothing changes.
    confirmed = office.post(f"/admin/platforms/{other.id}/remove", {"confirm": "on"})
    assert confirmed.status_code == 409
    assert "Disable it instead" in confirmed.get_data(as_text=True)
    db.expire_all()
    assert _count(db, Platform) == 2 and _count(db, Context) == 1


def test_the_office_cannot_remove_the_registration_it_is_using(office, db) -> None:
    own = db.scalar(select(Platform))
    reply = office.post(f"/admin/platforms/{own.id}/remove", {"confirm": "on"})
    assert reply.status_code == 409
    assert _count(db, Platform) == 1


def test_unknown_platform_is_404(office) -> None:
    assert office.get("/admin/platforms/4242").status_code == 404


def test_invite_from_the_page(runtime, db, client) -> None:
    settings = dataclasses.replace(runtime.settings, dynamic_registration="invite")
    app = create_app(runtime=Runtime(settings=settings, engine=runtime.engine,
                                     sessions=runtime.sessions))
    office = _session(db, app.test_client(), "admin")
    page = office.get("/admin/platforms/")
    assert "Make a one-time registration URL" in page.text
    reply = office.post("/admin/platforms/invite", {"note": "Faculty X"})
    assert reply.status_code == 200
    assert "/lti/register?invite=" in reply.text


def test_an_office_never_sees_or_changes_another_institutions_registrations(db, client) -> None:
    """Anyone can register a platform (open Dynamic Registration) and be its Office: that Office
    must not reach the registrations of other institutions."""
    victim = _session(db, client, "admin")
    victim_added = victim.post("/admin/platforms/", FORM)
    assert victim_added.status_code == 303
    canvas = db.scalar(select(Platform).where(Platform.client_id == "10000000000042"))
    other = institution_for_new_platform(db)  # another institution's Office
    intruder = _login(db, client, register_platform(db, PlatformSpec(
        issuer="https://lms.intruder.example", client_id="intruder",
        auth_login_url="https://lms.intruder.example/auth",
        auth_token_url="https://lms.intruder.example/token",
        key_set_url="https://lms.intruder.example/jwks", deployments=["1"],
        registered_via="dynamic"), institution_id=other.id), "admin")
    listing = intruder.get("/admin/platforms/")
    assert listing.status_code == 200 and "10000000000042" not in listing.text
    assert "home-admin" not in listing.text
    deployment = canvas.deployments[0]
    attempts = [
        intruder.get(f"/admin/platforms/{canvas.id}"),
        intruder.post(f"/admin/platforms/{canvas.id}/deployments", {"deployment_id": "99:x"}),
        intruder.post(f"/admin/platforms/{canvas.id}/deployments/{deployment.id}",
                      {"enabled": "0"}),
        intruder.post(f"/admin/platforms/{canvas.id}/auto-accept", {"enabled": "0"}),
        intruder.post(f"/admin/platforms/{canvas.id}/remove", {"confirm": "on"}),
    ]
    assert [reply.status_code for reply in attempts] == [404] * len(attempts)
    db.expire_all()
    canvas = db.get(Platform, canvas.id)
    assert canvas.auto_accept_deployments is True
    assert sorted(d.deployment_id for d in canvas.deployments) == ["42:abc", "43:def"]
    assert all(d.enabled for d in canvas.deployments)
    # The Office that added it still manages it.
    assert victim.get(f"/admin/platforms/{canvas.id}").status_code == 200
