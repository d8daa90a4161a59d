"""Every route of the app, for every role: never a 500, and the right 401/403 answers.

The matrix walks `app.url_map`, so routes other areas add are covered without editing this file.
A route protected by `require_role` carries `required_roles`; with no session it must answer 401,
and for a role not listed 403. Routes under the role prefixes must all be protected. Any other
answer is accepted as long as it is not a server error (ids in the URL name rows that do not
exist, forms are empty: the views must say so with a 4xx).
"""

from __future__ import annotations

import uuid

import pytest
from werkzeug.routing import Rule

from lti_tool.web.auth import CSRF_HEADER, csrf_token
from tests.conftest import session_headers

ROLE_PREFIXES = ("/learner", "/instructor", "/admin")
SESSIONS = ("learner1", "instructor", "admin", None)
SKIP_METHODS = {"HEAD", "OPTIONS"}
# Values for URL converters: ids that exist nowhere, plain words for strings.
# Readiness answers 503 by design while the schema is not recorded (these tests build tables
# with create_all; tests/jobs/test_ops.py covers /ready itself).
NOT_READY_IS_AN_ANSWER = {"ops.ready"}
CONVERTER_VALUES = {"int": 987654, "float": 1.5, "uuid": uuid.UUID(int=7), "path": "x/y"}


def build_path(app, rule: Rule) -> str:
    values = {}
    for name, converter in rule._converters.items():
        kind = type(converter).__name__.replace("Converter", "").lower()
        if kind in ("integer", "int"):
            values[name] = CONVERTER_VALUES["int"]
        elif kind == "any":
            values[name] = sorted(getattr(converter, "items", None) or ["x"])[0]
        else:
            values[name] = CONVERTER_VALUES.get(kind, "nosuchthing")
    with app.test_request_context():
        return app.url_map.bind("localhost").build(rule.endpoint, values, force_external=False)


def routes(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) - SKIP_METHODS):
            yield rule, method


def required_roles(app, endpoint: str) -> tuple[str, ...] | None:
    return getattr(app.view_functions[endpoint], "required_roles", None)


def csrf_for(app, client, token: str) -> str:
    with app.test_request_context(headers=session_headers(token)):
        app.preprocess_request()
        return csrf_token()


@pytest.mark.parametrize("lang", ["en", "tr"])
@pytest.mark.parametrize("who", SESSIONS, ids=lambda w: w or "no-session")
def test_every_route_answers_each_role_without_server_error(app, story, who, lang) -> None:
    """In both languages, on a course with decisions and a badge: a broken translation (a
    placeholder gone wrong) is a 500 too."""
    course = story
    client = app.test_client()
    token = course.tokens[who] if who else None
    headers = {"Accept": "text/html"}
    if token:
        headers["X-LTI-Tool-Session"] = token
        headers[CSRF_HEADER] = csrf_for(app, client, token)
    role = None if who is None else ("learner" if who.startswith("learner") else who)
    problems: list[str] = []
    seen = 0
    for rule, method in routes(app):
        seen += 1
        path = build_path(app, rule)
        reply = client.open(path, method=method, headers=headers, data={},
                            query_string={"lang": lang})
        status = reply.status_code
        where = f"{method} {rule.rule} as {who or 'no session'}: {status}"
        roles = required_roles(app, rule.endpoint)
        if status >= 500 and not (status == 503 and rule.endpoint in NOT_READY_IS_AN_ANSWER):
            problems.append(where + " (server error)")
        elif rule.rule.startswith(ROLE_PREFIXES) and roles is None:
            problems.append(where + " (page under a role prefix without require_role)")
        elif roles is not None and role is None and status != 401:
            problems.append(where + " (expected 401 without a session)")
        elif roles is not None and role is not None and role not in roles and status != 403:
            problems.append(where + f" (expected 403: only {', '.join(roles)})")
        elif roles is not None and role in roles and status == 401:
            # 403 stays possible for finer rules (e.g. a deep-linking-only page)
            problems.append(where + " (a valid session was not recognised)")
    assert seen > 0
    assert not problems, "\n".join(problems)


def test_a_forged_or_expired_session_is_refused(client, course) -> None:
    for path in ("/learner/", "/instructor/", "/admin/"):
        assert client.get(path, headers=session_headers("forged")).status_code == 401
        assert client.get(path, headers=session_headers("x" * 500)).status_code == 401


def test_a_session_of_another_platform_does_not_reach_this_one(client, db, course) -> None:
    """The Office of platform B sees only B's audit entries, even for the same course key."""
    from lti_tool.store.models.core import AuditEntry, Platform
    from testkit.seed import seed_course

    other = seed_course(db, issuer="https://other.example.edu")  # another institution
    mine = db.get(Platform, course.platform_id)
    assert db.get(Platform, other.platform_id).institution_id != mine.institution_id
    db.add(AuditEntry(institution_id=mine.institution_id, platform_id=course.platform_id,
                      action="other.action", target="secret-of-a"))
    db.commit()
    page = client.get("/admin/audit", headers=session_headers(other.tokens["admin"])).get_data(True)
    assert "secret-of-a" not in page
    own = client.get("/admin/audit", headers=session_headers(course.tokens["admin"])).get_data(True)
    assert "secret-of-a" in own


def test_two_registrations_of_one_institution_share_the_catalogue_not_the_courses(
        app, db, settings) -> None:
    """Moodle and Canvas of one institution: one catalogue for both Offices; each course,
    learner and credential stays with its own registration."""
    from lti_tool.store.models.catalogue import Offering
    from lti_tool.store.models.core import Platform
    from testkit.seed import seed_course, seed_offering

    moodle = seed_offering(db, seed_course(db))
    canvas = seed_course(db, issuer="https://canvas.same.invalid")
    db.get(Platform, canvas.platform_id).institution_id = \
        db.get(Platform, moodle.platform_id).institution_id
    db.commit()
    version_id = db.get(Offering, moodle.offering_id).mc_version_id
    client = app.test_client()
    catalogue = client.get("/admin/microcredentials",
                           headers=session_headers(canvas.tokens["admin"]))
    assert catalogue.status_code == 200
    assert "DATA-101" in catalogue.get_data(as_text=True)
    for who in ("instructor", "learner1"):
        reply = client.get(f"/{'learner' if who != 'instructor' else 'instructor'}/",
                           headers=session_headers(canvas.tokens[who]))
        assert reply.status_code == 200, who
        page = reply.get_data(as_text=True)
        assert "Data Literacy Basics" not in page, who
    # the Moodle course's offering is not reachable from the Canvas course
    offering = client.get(f"/instructor/offerings/{moodle.offering_id}",
                          headers=session_headers(canvas.tokens["instructor"]))
    assert offering.status_code in (403, 404)
    assert version_id


@pytest.mark.parametrize("who", ["learner1", "instructor", "admin"])
def test_changing_ids_in_urls_reaches_nothing_of_others(app, db, settings, who) -> None:
    """Every route of a role with ids, filled with other people's ids, answers 403 or 404.

    Ids come from a second platform's course (offering, person, credential, micro-credential,
    version, platform) and, for a learner, from a classmate's credential in the same course, so
    both isolation rules are exercised.
    """
    from lti_tool.badges.issuance import issue_on_pass
    from lti_tool.store.db import utcnow
    from lti_tool.store.models.catalogue import Offering
    from testkit.seed import seed_course, seed_decision, seed_offering

    def with_credential(course, key):
        seed_decision(db, course, key, [90, 90, 90], status="passed")
        version_id = db.get(Offering, course.offering_id).mc_version_id
        credential = issue_on_pass(db, settings, person_id=course.people[key],
                                   mc_version_id=version_id, offering_id=course.offering_id,
                                   outcome_levels={}, passed_at=utcnow())
        db.commit()
        return credential

    mine = seed_offering(db, seed_course(db))
    theirs = seed_offering(db, seed_course(db, issuer="https://other.invalid"), code="OTHER")
    classmate = with_credential(mine, "learner2")
    stranger = with_credential(theirs, "learner1")
    seed_decision(db, mine, "learner1", [10, 10, 10], status="failed")
    other_offering = db.get(Offering, theirs.offering_id)
    client = app.test_client()
    token = mine.tokens[who]
    role = "learner" if who.startswith("learner") else who
    headers = {"X-LTI-Tool-Session": token, CSRF_HEADER: csrf_for(app, client, token),
               "Accept": "text/html"}
    int_ids = {"offering_id": other_offering.id, "person_id": theirs.people["learner1"],
               "version_id": other_offering.mc_version_id,
               "mc_id": other_offering.mc_version.micro_credential_id,
               "platform_id": theirs.platform_id}
    public_ids = [stranger.public_id] + ([classmate.public_id] if role == "learner" else [])
    problems, tried = [], 0
    for rule, method in routes(app):
        roles = required_roles(app, rule.endpoint)
        if not rule.arguments or roles is None or role not in roles:
            continue
        for public_id in public_ids:
            values = {}
            for name, converter in rule._converters.items():
                kind = type(converter).__name__
                if "Integer" in kind:
                    values[name] = int_ids.get(name, other_offering.id)
                elif kind == "AnyConverter":
                    values[name] = sorted(converter.items)[0]
                else:
                    values[name] = public_id
            with app.test_request_context():
                path = app.url_map.bind("localhost").build(rule.endpoint, values)
            status = client.open(path, method=method, headers=headers, data={}).status_code
            tried += 1
            if status not in (403, 404):
                problems.append(f"{method} {path}: {status}")
    assert tried >= 2
    assert not problems, "\n".join(problems)
