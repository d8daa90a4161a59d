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

ROLE_PREFIXES = ("/learner", "/instructor", "/admin")
SESSIONS = ("learner1", "instructor", "admin", None)
SKIP_METHODS = {"HEAD", "OPTIONS"}
# Values for URL converters: ids that exist nowhere, plain words for strings.
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
    with app.test_request_context(query_string={"sid": token}):
        app.preprocess_request()
        return csrf_token()


@pytest.mark.parametrize("who", SESSIONS, ids=lambda w: w or "no-session")
def test_every_route_answers_each_role_without_server_error(app, course, who) -> None:
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
        reply = client.open(path, method=method, headers=headers, data={})
        status = reply.status_code
        where = f"{method} {rule.rule} as {who or 'no session'}: {status}"
        roles = required_roles(app, rule.endpoint)
        if status >= 500:
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
        assert client.get(path, query_string={"sid": "forged"}).status_code == 401
        assert client.get(path, query_string={"sid": "x" * 500}).status_code == 401


def test_a_session_of_another_platform_does_not_reach_this_one(client, db, course) -> None:
    """The Office of platform B sees only B's audit entries, even for the same course key."""
    from lti_tool.store.models.core import AuditEntry
    from tests.pages.seed import seed_course

    other = seed_course(db, issuer="https://other.example.edu")
    db.add(AuditEntry(platform_id=course.platform_id, action="secret.of.a"))
    db.commit()
    page = client.get("/admin/audit", query_string={"sid": other.tokens["admin"]}).get_data(True)
    assert "secret.of.a" not in page
