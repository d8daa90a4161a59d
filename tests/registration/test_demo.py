"""`lti-tool demo`: both apps in-process on free loopback ports, driven over real HTTP."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

import pytest
import requests
from jwcrypto import jwt
from registration_fakes import load_fixture
from sqlalchemy import select

from lti_tool.demo import Demo, start_demo
from lti_tool.demo_seed import DEMO_CLIENT_ID
from lti_tool.store import keys
from lti_tool.store.models.core import Membership, Person, Platform

AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[Demo]:
    running = start_demo(directory=tmp_path_factory.mktemp("demo"), port=0, lms_port=0)
    yield running
    running.stop()


class _Forms(HTMLParser):
    """The POST forms of a page: action and hidden/named input values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and values.get("method", "").lower() == "post":
            self.forms.append((values.get("action", ""), {}))
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1][1][values["name"]] = values.get("value", "")


def loopback_browser() -> requests.Session:
    """An HTTP client that, like browsers, sends `Secure` cookies to http://127.0.0.1 (a
    secure context): the tool's loopback cookies are `SameSite=None; Secure`."""
    from http.cookiejar import DefaultCookiePolicy

    browser = requests.Session()
    browser.cookies.set_policy(DefaultCookiePolicy(secure_protocols=("https", "wss", "http")))
    return browser


def _follow_form(browser: requests.Session, page: requests.Response,
                 **extra: str) -> requests.Response:
    """Submit the page's (first) POST form the way the browser or its script would."""
    parser = _Forms()
    parser.feed(page.text)
    action, fields = parser.forms[0]
    return browser.post(urljoin(page.url, action), data={**fields, **extra})


def _launch(demo: Demo, user_id: str) -> tuple[requests.Session, requests.Response]:
    browser = loopback_browser()
    course_page = browser.get(demo.lms_url + "/")
    assert course_page.status_code == 200
    assert f'name="user" value="{user_id}"' in course_page.text
    # Practice LMS -> tool /lti/login -> practice LMS /auth: a signed id_token in a form.
    auth_page = browser.get(demo.lms_url + "/launch",
                            params={"user": user_id, "message": "resource_link"})
    assert auth_page.status_code == 200, auth_page.text
    assert auth_page.history[0].headers["Location"].startswith(demo.tool_url + "/lti/login?")
    return browser, _follow_form(browser, auth_page)


def test_instructor_launch_end_to_end(demo) -> None:
    browser, landed = _launch(demo, demo.lms.course.instructor.user_id)
    assert landed.status_code == 200, landed.text
    assert landed.url.startswith(demo.tool_url + "/instructor/")
    assert browser.get(landed.url).status_code == 200  # the session holds

    with demo.runtime.sessions() as db:
        platform = db.scalar(select(Platform).where(Platform.issuer == demo.lms_url))
        assert platform.client_id == DEMO_CLIENT_ID and platform.registered_via == "demo"
        person = db.scalar(select(Person).where(Person.platform_id == platform.id,
                                                Person.sub == "3"))
        assert person.name == "Terry Teacher"
        assert db.scalar(select(Membership.role)
                         .where(Membership.person_id == person.id)) == "instructor"


def test_deep_linking_round_trip(demo) -> None:
    browser = loopback_browser()
    auth_page = browser.get(demo.lms_url + "/launch", params={
        "user": demo.lms.course.instructor.user_id, "message": "deep_linking"})
    chooser = _follow_form(browser, auth_page)
    assert chooser.status_code == 200 and chooser.url.startswith(demo.tool_url + "/lti/deep-link")
    returning = _follow_form(browser, chooser, cancel="1")
    assert returning.status_code == 200, returning.text
    # The tool's signed LtiDeepLinkingResponse, checked by the practice LMS with the tool's JWKS.
    back = _follow_form(browser, returning)
    assert back.status_code == 200 and back.url == demo.lms_url + "/"


def test_learner_launch_lands_on_the_learner_home(demo) -> None:
    learner = demo.lms.course.learners[0]
    _browser, landed = _launch(demo, learner.user_id)
    assert landed.status_code == 200, landed.text
    assert landed.url.startswith(demo.tool_url + "/learner/")


def _assertion(demo: Demo, *, audience: str | None = None) -> str:
    """The client assertion the tool's services send, signed with the tool's own key."""
    with demo.runtime.sessions() as db:
        key = keys.signing_jwk(db, demo.settings, "lti")
        db.commit()
    now = int(time.time())
    token = jwt.JWT(header={"alg": "RS256", "kid": key["kid"]},
                    claims={"iss": DEMO_CLIENT_ID, "sub": DEMO_CLIENT_ID,
                            "aud": audience or demo.lms_url + "/token", "iat": now,
                            "exp": now + 300, "jti": uuid.uuid4().hex})
    token.make_signed_token(key)
    return token.serialize()


def _access_token(demo: Demo, scopes: list[str]) -> str:
    reply = requests.post(demo.lms_url + "/token", data={
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": _assertion(demo), "scope": " ".join(scopes)})
    assert reply.status_code == 200, reply.text
    return reply.json()["access_token"]


def test_client_assertion_with_the_wrong_audience_is_refused(demo) -> None:
    reply = requests.post(demo.lms_url + "/token", data={
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": _assertion(demo, audience="https://elsewhere.example/token"),
        "scope": AGS + "score"})
    assert reply.status_code == 401


def test_ags_and_nrps_answer_in_moodle_shapes(demo) -> None:
    token = _access_token(demo, [AGS + "lineitem", AGS + "result.readonly", AGS + "score",
                                 NRPS])
    auth = {"Authorization": f"Bearer {token}"}
    course_api = f"{demo.lms_url}/api/lti/courses/{demo.lms.course.context_id}"
    moodle_items = load_fixture("moodle", "ags_instructor_lineitems_exchanges.json")
    moodle_results = load_fixture("moodle", "ags_student_score_and_results.json")
    moodle_nrps = load_fixture("moodle", "nrps_membership.json")

    items = requests.get(course_api + "/lineitems", headers=auth)
    assert items.headers["Content-Type"].startswith(
        "application/vnd.ims.lis.v2.lineitemcontainer+json")
    # the course's own columns (the demo's job runner may have added the micro-credential's)
    assert [i["label"] for i in items.json()
            if not i["label"].startswith("Micro-credential:")] == [
        "Essay 1", "Quiz 1", "Group project", "Participation"]
    assert set(items.json()[1]) == set(moodle_items["lineitems"]["body"][1])

    quiz = items.json()[1]["id"]
    results = requests.get(quiz + "/results", headers=auth).json()
    assert set(results[0]) == set(moodle_results["results"]["body"][0])
    assert {r["userId"]: r["resultScore"] for r in results}["4"] == 18

    score = dict(moodle_results["score_post"]["request"]["body"], userId="5", scoreGiven=9,
                 scoreMaximum=10)
    posted = requests.post(quiz + "/scores", data=json.dumps(score), headers={
        **auth, "Content-Type": "application/vnd.ims.lis.v1.score+json"})
    assert posted.status_code == 200 and posted.text == ""
    mine = requests.get(quiz + "/results", params={"user_id": "5"}, headers=auth).json()
    assert [(r["userId"], r["resultScore"]) for r in mine] == [("5", 18.0)]

    members = requests.get(course_api + "/memberships", headers=auth)
    body = members.json()
    assert set(body) == set(moodle_nrps["nrps"]["body"])
    assert set(body["members"][0]) == set(moodle_nrps["nrps"]["body"]["members"][0])
    assert sorted(m["roles"][0] for m in body["members"]).count("Learner") == 5
    page = requests.get(course_api + "/memberships", params={"limit": 2}, headers=auth)
    assert len(page.json()["members"]) == 2
    assert 'rel="next"' in page.headers["Link"]


def test_the_demo_shows_the_seeded_pass_in_the_practice_lms_right_away(demo) -> None:
    """Its job runner sends the passed learner's score as soon as a launch has given the
    course its AGS service (issue 14)."""
    _launch(demo, demo.lms.course.instructor.user_id)
    token = _access_token(demo, [AGS + "lineitem", AGS + "result.readonly"])
    auth = {"Authorization": f"Bearer {token}"}
    course_api = f"{demo.lms_url}/api/lti/courses/{demo.lms.course.context_id}"
    deadline = time.monotonic() + 60  # a bound for a loaded machine, not a timing
    scores: list = []
    while time.monotonic() < deadline and 100 not in scores:
        columns = [i for i in requests.get(course_api + "/lineitems", headers=auth).json()
                   if i["label"].startswith("Micro-credential:")]
        if columns:
            scores = [r["resultScore"] for r in requests.get(
                columns[0]["id"] + "/results", headers=auth).json()]
        time.sleep(0.2)
    assert 100 in scores


def test_services_refuse_missing_or_forged_tokens(demo) -> None:
    course_api = f"{demo.lms_url}/api/lti/courses/{demo.lms.course.context_id}"
    assert requests.get(course_api + "/memberships").status_code == 401
    forged = requests.get(course_api + "/memberships",
                          headers={"Authorization": "Bearer " + _assertion(demo)})
    assert forged.status_code == 401
    nrps_only = _access_token(demo, [NRPS])
    assert requests.get(course_api + "/lineitems",
                        headers={"Authorization": f"Bearer {nrps_only}"}).status_code == 401


def test_unknown_user_and_bad_auth_requests(demo) -> None:
    assert requests.get(demo.lms_url + "/launch", params={"user": "99"}).status_code == 404
    assert requests.get(demo.lms_url + "/auth", params={"scope": "openid"}).status_code == 400


def test_a_restart_reuses_the_database_and_the_registration(tmp_path) -> None:
    for _ in range(2):
        running = start_demo(directory=tmp_path, port=0, lms_port=0)
        try:
            with running.runtime.sessions() as db:
                count = len(db.scalars(select(Platform)).all())
        finally:
            running.stop()
    # Ports differ between runs, so each run's practice LMS is its own issuer; same key file.
    assert count == 2
    assert (tmp_path / "instance" / "practice_lms_key.pem").stat().st_mode & 0o077 == 0


def test_a_busy_port_is_a_clear_error(demo, tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from lti_tool.cli import main

    monkeypatch.chdir(tmp_path)
    busy = urlparse(demo.tool_url).port
    result = CliRunner().invoke(main, ["demo", "--port", str(busy), "--lms-port", "0"])
    assert result.exit_code == 1
    assert "Cannot start the demo" in result.stderr
    assert f"port {busy} or 0?" in result.stderr and "{port}" not in result.stderr


def test_commands_in_the_demo_folder_use_the_demos_data_and_url(tmp_path, monkeypatch) -> None:
    """`lti-tool credentials list` and `lti-tool verify` run in the demo's folder (another
    --port than 8000, no variables set) find the demo's database and its URL."""
    from click.testing import CliRunner

    from lti_tool.cli import main

    for name in [n for n in __import__("os").environ if n.startswith("LTI_TOOL_")]:
        monkeypatch.delenv(name)
    running = start_demo(directory=tmp_path, port=0, lms_port=0)
    try:
        monkeypatch.chdir(tmp_path)
        listed = CliRunner().invoke(main, ["credentials", "list", "--json"])
        assert listed.exit_code == 0, listed.output
        credentials = json.loads(listed.stdout)
        assert credentials, "the demo seeds a learner who holds a credential"
        assert running.tool_url in listed.stdout and ":8000" not in running.tool_url
        assert credentials[0]["urls"]["page"].startswith(running.tool_url + "/credentials/")
        document = requests.get(credentials[0]["urls"]["json"], timeout=10)
        assert document.status_code == 200
        path = tmp_path / "credential.json"
        path.write_text(document.text)
        verified = CliRunner().invoke(main, ["verify", str(path)])
        assert verified.exit_code == 0, verified.output
        assert "INVALID" not in verified.output
    finally:
        running.stop()
    assert not (tmp_path / "lti_tool.db").exists()  # nothing went to the default database


def test_forged_deep_linking_response_is_refused(demo) -> None:
    reply = requests.post(demo.lms_url + "/deep-link-return", data={"JWT": _assertion(demo)[:-4]})
    assert reply.status_code == 400
    assert demo.lms.course.placed_links == []


def test_the_office_can_launch_from_the_practice_lms(demo) -> None:
    """The practice LMS's site administrator opens the Office pages; it is no course member."""
    office = demo.lms.course.office
    assert office is not None and office not in demo.lms.course.members
    browser, landed = _launch(demo, office.user_id)
    assert landed.status_code == 200, landed.text[:300]
    assert urlparse(landed.url).path.startswith("/admin/")
    assert "Office" in landed.text


def test_the_practice_lms_launches_in_turkish(demo) -> None:
    browser = requests.Session()
    user = demo.lms.course.learners[0].user_id
    auth_page = browser.get(demo.lms_url + "/launch",
                            params={"user": user, "message": "resource_link", "locale": "tr"})
    landed = _follow_form(browser, auth_page)
    assert landed.status_code == 200
    assert 'lang="tr"' in landed.text


def test_the_practice_lms_deep_links_in_turkish(demo) -> None:
    """The deep-linking launch has its own language choice: the chooser speaks Turkish."""
    page = requests.get(demo.lms_url + "/").text
    form = page[page.index('value="deep_linking"'):]
    assert 'name="locale"' in form[:form.index("</form>")]
    browser = requests.Session()
    auth_page = browser.get(demo.lms_url + "/launch", params={
        "user": demo.lms.course.instructor.user_id, "message": "deep_linking", "locale": "tr"})
    landed = _follow_form(browser, auth_page)
    assert landed.status_code == 200 and 'lang="tr"' in landed.text
