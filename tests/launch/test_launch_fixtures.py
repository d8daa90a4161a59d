"""Launches shaped exactly like the captured Moodle and the documented Canvas messages."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lti_tool.store.models.core import Context, Membership, Person, ResourceLink, WebSession
from lti_tool.web.auth import COOKIE_NAME, token_hash
from testkit.lti import (
    drop_session_cookies,
    fixture_claims,
    login_and_launch,
    query_of,
    register_platform,
    session_rows,
)
from tests.launch.conftest import CANVAS_DEPLOYMENT, CANVAS_HOST, CANVAS_ISSUER


def _session_token(response) -> str:
    cookie = next(h for h in response.headers.getlist("Set-Cookie")
                  if h.startswith(COOKIE_NAME + "="))
    return cookie.split(";")[0].split("=", 1)[1]


@pytest.mark.parametrize(("fixture", "role", "home"), [
    ("moodle/id_token_instructor_resource_link.json", "instructor", "/instructor/"),
    ("moodle/id_token_student_resource_link.json", "learner", "/learner/"),
])
def test_moodle_resource_link_launch_records_the_course(client, db, moodle, key, fixture, role,
                                                        home):
    claims = fixture_claims(fixture, moodle)
    response = login_and_launch(client, moodle, key, claims)
    assert response.status_code == 303, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith(home)
    assert "lc" not in query_of(location)  # new-window launch: the cookie is first-party

    person = db.scalar(select(Person).where(Person.platform_id == moodle.id))
    assert (person.sub, person.email) == (claims["sub"], claims["email"])
    assert person.name == claims["name"] and person.locale == "en"
    context = db.scalar(select(Context).where(Context.platform_id == moodle.id))
    assert (context.context_id, context.label, context.title) == ("2", "LTI101",
                                                                  "LTI Test Course 101")
    ags = claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]
    assert context.ags_lineitems_url == ags["lineitems"]
    assert context.ags_scopes == ags["scope"]
    assert context.nrps_url.endswith("/CourseSection/2/bindings/1/memberships")
    assert context.nrps_versions == ["1.0", "2.0"]
    link = db.scalar(select(ResourceLink).where(ResourceLink.context_id == context.id))
    assert link.resource_link_id == "1" and link.custom["difficulty"] == "hard"
    assert link.ags_lineitem_url == ags["lineitem"]
    membership = db.scalar(select(Membership).where(Membership.person_id == person.id))
    assert membership.role == role and membership.lis_roles == claims[
        "https://purl.imsglobal.org/spec/lti/claim/roles"]
    session = db.scalar(select(WebSession).where(
        WebSession.token_hash == token_hash(_session_token(response))))
    assert (session.person_id, session.context_id, session.resource_link_id, session.role) == (
        person.id, context.id, link.id, role)
    assert session.launch_data["deployment_id"] == "1"


def test_moodle_embedded_launch_carries_a_one_time_launch_code(client, db, moodle, key):
    claims = fixture_claims("moodle/id_token_student_resource_link_iframe.json", moodle)
    response = login_and_launch(client, moodle, key, claims)
    assert response.status_code == 303
    location = response.headers["Location"]
    code = query_of(location)["lc"]
    token = _session_token(response)
    assert token not in location and "sid" not in query_of(location)
    # The code alone (no cookie, as when third-party cookies are blocked) opens the page once.
    drop_session_cookies(client)
    page = client.get(location)
    assert page.status_code == 200 and code not in page.get_data(as_text=True)
    again = client.get(location)
    assert again.status_code == 401 and "already used" in again.get_data(as_text=True)
    assert client.get("/learner/").status_code == 401


def test_second_launch_updates_instead_of_duplicating(client, db, moodle, key):
    claims = fixture_claims("moodle/id_token_student_resource_link.json", moodle)
    assert login_and_launch(client, moodle, key, claims).status_code == 303
    claims["name"] = "Renamed Student"
    claims["https://purl.imsglobal.org/spec/lti/claim/context"]["title"] = "Renamed course"
    assert login_and_launch(client, moodle, key, claims).status_code == 303
    counts = session_rows(db)
    assert (counts["Person"], counts["Context"], counts["Membership"], counts["WebSession"]) == (
        1, 1, 1, 2)
    db.expire_all()
    assert db.scalar(select(Person.name)) == "Renamed Student"
    assert db.scalar(select(Context.title)) == "Renamed course"


@pytest.mark.parametrize(("fixture", "role"), [
    ("canvas/id_token_instructor_resource_link.json", "instructor"),
    ("canvas/id_token_student_resource_link.json", "learner"),
])
def test_canvas_launch(client, db, canvas, key, fixture, role):
    claims = fixture_claims(fixture, canvas)
    response = login_and_launch(client, canvas, key, claims)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.headers["Location"].startswith(f"/{role}/")
    # Canvas launches run in an iframe (document_target iframe): a launch code travels along.
    assert "lc" in query_of(response.headers["Location"])
    person = db.scalar(select(Person))
    assert person.sub == claims["sub"] and person.locale == "tr"
    assert person.lis_person_sourcedid == "20231234"
    session = db.scalar(select(WebSession))
    assert session.locale == "tr"
    context = db.scalar(select(Context))
    assert "https://canvas.instructure.com/lti-ags/progress/scope/show" in context.ags_scopes


def test_canvas_launch_without_email_keeps_working(client, db, canvas, key):
    claims = fixture_claims("canvas/id_token_student_resource_link.json", canvas)
    del claims["email"]
    claims["https://purl.imsglobal.org/spec/lti/claim/lis"]["person_sourcedid"] = \
        "$Person.sourcedId"
    assert login_and_launch(client, canvas, key, claims).status_code == 303
    person = db.scalar(select(Person))
    assert person.email is None and person.lis_person_sourcedid is None


def test_canvas_account_admin_without_membership_role_is_admin(client, db, canvas, key):
    claims = fixture_claims("canvas/id_token_instructor_resource_link.json", canvas)
    claims["https://purl.imsglobal.org/spec/lti/claim/roles"] = [
        "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
        "http://purl.imsglobal.org/vocab/lis/v2/system/person#SysAdmin",
    ]
    response = login_and_launch(client, canvas, key, claims)
    assert response.headers["Location"].startswith("/admin/")
    assert db.scalar(select(Membership.role)) == "admin"
    assert db.scalar(select(Person.is_admin)) is True


def test_two_canvas_registrations_with_one_issuer_stay_isolated(client, db, canvas, key):
    other = register_platform(db, issuer=CANVAS_ISSUER, client_id="170000000000999", key=key,
                              deployments=(CANVAS_DEPLOYMENT,), lms_kind="canvas",
                              lms_hosts=(CANVAS_HOST,))
    first = fixture_claims("canvas/id_token_student_resource_link.json", canvas)
    second = fixture_claims("canvas/id_token_student_resource_link.json", other)
    assert login_and_launch(client, canvas, key, first).status_code == 303
    assert login_and_launch(client, other, key, second).status_code == 303
    # Same sub and context id, two schools: two people, two courses, never shared.
    people = db.scalars(select(Person).order_by(Person.id)).all()
    contexts = db.scalars(select(Context).order_by(Context.id)).all()
    assert [p.platform_id for p in people] == [canvas.id, other.id]
    assert [c.platform_id for c in contexts] == [canvas.id, other.id]
    assert people[0].sub == people[1].sub and contexts[0].context_id == contexts[1].context_id
    sessions = db.scalars(select(WebSession).order_by(WebSession.id)).all()
    assert [(s.platform_id, s.person_id) for s in sessions] == [
        (canvas.id, people[0].id), (other.id, people[1].id)]


def test_login_without_client_id_is_ambiguous_for_canvas_with_two_registrations(client, db,
                                                                               canvas, key):
    register_platform(db, issuer=CANVAS_ISSUER, client_id="170000000000999", key=key)
    response = client.get("/lti/login", query_string={
        "iss": CANVAS_ISSUER, "login_hint": "x", "target_link_uri": "http://127.0.0.1:8000/"})
    assert response.status_code == 400
    assert "has 2 registrations" in response.get_data(as_text=True)


def test_new_deployment_is_accepted_only_when_the_registration_opted_in(client, db, canvas,
                                                                       key):
    claims = fixture_claims("canvas/id_token_student_resource_link.json", canvas,
                            deployment_id="43:ffff")
    refused = login_and_launch(client, canvas, key, claims)
    assert refused.status_code == 400 and "43:ffff" in refused.get_data(as_text=True)
    canvas.auto_accept_deployments = True
    db.commit()
    assert login_and_launch(client, canvas, key, claims).status_code == 303
    context = db.scalar(select(Context))
    assert context.deployment_id is not None
