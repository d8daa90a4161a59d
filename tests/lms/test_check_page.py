"""The Office's "Test connection" on a registration's page: the check `lti-tool platform check`
runs (`lti_tool.lms.check.run_check`), against the fake Moodle of testkit/fakelms, shown in
words in English and Turkish; LMS failures and hostile replies are findings, never a 500."""

from __future__ import annotations

import hashlib
import hmac
import html
import re

import pytest
from sqlalchemy import func, select

from lti_tool.lms.ags import SCOPE_SCORE
from lti_tool.lms.nrps import SCOPE_MEMBERSHIP
from lti_tool.store.models.core import AuditEntry, Context, Person, WebSession
from lti_tool.web import create_app
from lti_tool.web.auth import SESSION_HEADER, start_session, token_hash
from tests.fakelms.pytest_fixtures import make_context


class Office:
    """A test client with one launch session (role `admin` unless told) and its CSRF token."""

    def __init__(self, runtime, platform_id: int, role: str = "admin") -> None:
        self.client = create_app(runtime=runtime).test_client()
        with runtime.sessions() as db:
            person = Person(platform_id=platform_id, sub=f"office-{role}", name="Office")
            db.add(person)
            db.flush()
            token = start_session(db, platform_id=platform_id, person_id=person.id,
                                  context_id=None, resource_link_id=None, role=role)
            db.commit()
            secret = db.scalar(select(WebSession.csrf_secret)
                               .where(WebSession.token_hash == token_hash(token)))
        self.headers = {SESSION_HEADER: token}
        self.csrf = hmac.new(secret.encode(), b"csrf", hashlib.sha256).hexdigest()

    def test_connection(self, platform_id: int, *, lang: str = "en", csrf: bool = True):
        data = {"csrf_token": self.csrf} if csrf else {}
        return self.client.post(f"/admin/platforms/{platform_id}/check", data=data,
                                headers=self.headers, query_string={"lang": lang})


def _platform(runtime, fake, **kwargs) -> int:
    context_id = make_context(runtime, fake, **kwargs)
    with runtime.sessions() as db:
        return db.get(Context, context_id).platform_id


def _rows(page: str) -> list[tuple[str, str, str]]:
    """(check, result, what to do) of each row of the results table, tags stripped."""
    body = page.split('class="check-results"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>",
                      body, re.S)
    return [tuple(html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in row[1:])
            for row in rows]


def test_a_working_moodle_passes_every_check(fast_runtime, moodle_lms) -> None:
    platform_id = _platform(fast_runtime, moodle_lms)
    office = Office(fast_runtime, platform_id)
    page = office.client.get(f"/admin/platforms/{platform_id}", headers=office.headers)
    # Inside an LMS iframe without cookies the session travels in the form's URL (`lc=`):
    # a fresh client with no session header or cookie can press the button.
    action = html.unescape(re.search(r'<form method="post" action="([^"]*/check[^"]*)"',
                                     page.text).group(1))
    assert action.startswith(f"/admin/platforms/{platform_id}/check?lc=")
    csrf = re.search(r'id="connection".*?name="csrf_token" value="([^"]+)"', page.text,
                     re.S).group(1)
    framed = create_app(runtime=fast_runtime).test_client(use_cookies=False)
    assert framed.post(action.split("#")[0], data={"csrf_token": csrf}).status_code == 200
    reply = office.test_connection(platform_id)
    assert reply.status_code == 200
    rows = _rows(reply.text)
    assert len(rows) == 10 and {result for _, result, _ in rows} == {"Works"}
    assert "All 10 checks passed." in reply.text
    assert ("Permission score: send the micro-credential's grade (grade passback)", "Works",
            "") in rows
    assert moodle_lms.count("/mod/lti/token.php", "POST") >= 5  # one token per scope
    assert any(c["wsfunction"] == "core_webservice_get_site_info" for c in moodle_lms.ws_calls)
    # the same words in Turkish
    turkish = office.test_connection(platform_id, lang="tr")
    assert "10 denetimin tümü geçti." in turkish.text and "Çalışıyor" in turkish.text
    with fast_runtime.sessions() as db:
        assert db.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "platform.check")) == 3  # one per press


def test_a_failing_moodle_names_what_is_missing_and_how_to_fix_it(fast_runtime,
                                                                  moodle_lms) -> None:
    moodle_lms.allowed_scopes = moodle_lms.allowed_scopes - {SCOPE_MEMBERSHIP, SCOPE_SCORE}
    moodle_lms.ws_functions = {"core_webservice_get_site_info",
                               "gradereport_user_get_grade_items", "core_grades_get_gradeitems"}
    moodle_lms.ws_denied = {"core_grades_get_gradeitems"}
    platform_id = _platform(fast_runtime, moodle_lms)
    reply = Office(fast_runtime, platform_id).test_connection(platform_id)
    assert reply.status_code == 200
    bad = {what: fix for what, result, fix in _rows(reply.text) if result == "Needs attention"}
    assert "4 checks need attention." in reply.text
    assert "Manage tools" in bad["Permission score: send the micro-credential's grade "
                                 "(grade passback)"]
    functions = bad["Functions in the tool's external service"]
    assert "core_grading_get_definitions" in functions and "External services" in functions
    capability = bad["core_grades_get_gradeitems in course 2"]
    assert "moodle/grade:viewall" in capability
    assert "Sorry, but" not in reply.text  # Moodle's own text is only logged
    assert moodle_lms.created_line_items == [] and moodle_lms.posted_scores == []


def test_no_token_says_how_to_get_one_in_turkish_too(fast_runtime, moodle_lms) -> None:
    platform_id = _platform(fast_runtime, moodle_lms, rest=False)
    office = Office(fast_runtime, platform_id)
    english = office.test_connection(platform_id)
    assert f"lti-tool platform rest-token {platform_id} --file FILE" in english.text
    turkish = office.test_connection(platform_id, lang="tr")
    assert "Dikkat gerekiyor" in turkish.text and "Web servisi belirteci" in turkish.text


@pytest.mark.parametrize("hostile", ["html", "list", "functions", "token", "status", "slow"])
def test_a_hostile_lms_reply_is_a_clear_finding_never_a_500(fast_runtime, moodle_lms,
                                                            hostile) -> None:
    """Replies no Moodle should send: an HTML page, a JSON list, a site info whose functions
    are not a list, a token endpoint answering 200 with text, a 302, a stalled answer."""
    site_info = moodle_lms.course.ws_replies["core_webservice_get_site_info"]
    if hostile == "html":
        moodle_lms.course.ws_replies["core_webservice_get_site_info"] = lambda _: "<html>"
    elif hostile == "list":
        moodle_lms.course.ws_replies["core_webservice_get_site_info"] = lambda _: [1, 2]
    elif hostile == "functions":
        moodle_lms.course.ws_replies["core_webservice_get_site_info"] = dict(
            site_info, functions={"name": 7})
    elif hostile == "token":
        moodle_lms.fail("/mod/lti/token.php", status=200, times=100)
    elif hostile == "status":
        moodle_lms.fail("/webservice/rest/server.php", status=302, times=100)
    else:
        moodle_lms.fail("/webservice/rest/server.php", delay=3, times=100)
    platform_id = _platform(fast_runtime, moodle_lms)
    reply = Office(fast_runtime, platform_id).test_connection(platform_id)
    assert reply.status_code == 200, reply.text
    rows = _rows(reply.text)
    bad = [(what, fix) for what, result, fix in rows if result == "Needs attention"]
    assert bad, rows
    assert all(fix for _, fix in bad), bad  # each problem says something
    if hostile in ("html", "list", "functions"):
        # a reply that is not site information is said so; it is not "add every function"
        # (defect found here: the check listed all functions as missing)
        [(what, fix)] = bad
        assert what.startswith("Web-service token at") and "not Moodle's site information" in fix


def test_only_the_office_with_its_csrf_token_may_test(fast_runtime, moodle_lms) -> None:
    platform_id = _platform(fast_runtime, moodle_lms)
    anonymous = create_app(runtime=fast_runtime).test_client()
    assert anonymous.post(f"/admin/platforms/{platform_id}/check").status_code == 401
    instructor = Office(fast_runtime, platform_id, role="instructor")
    assert instructor.test_connection(platform_id).status_code == 403
    office = Office(fast_runtime, platform_id)
    assert office.test_connection(platform_id, csrf=False).status_code in (400, 403)
    assert office.test_connection(987654).status_code == 404
    assert moodle_lms.log == []  # none of these reached the LMS
