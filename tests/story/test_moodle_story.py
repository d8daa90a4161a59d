"""The whole Moodle story of issue 14, replayed against the fake Moodle of testkit/fakelms.

The fake answers with the captured Moodle 5.1 shapes (../shared/fixtures/moodle): its OpenID
configuration and Dynamic Registration, its AGS, NRPS and web services of an ordinary course
(assignments with simple direct grading, so `core_grading_get_definitions` with
`activeonly=1` answers the captured `invalid_method_name` exception). Every launch is signed by
the PyPI `lti1p3platform` package, the LMS here, with Moodle's own claims (custom service URLs,
AGS and NRPS endpoints, tool_platform) re-aimed at the fake; its keyset is the fake's
`/mod/lti/certs.php`, which the registration points the tool at.

The operator acts only through the CLI of DESIGN.md (`platform invite`, `mc import|submit|
approve`, `platform rest-token`, `platform check`, `sync`, `offering map`, `verify`), the
teacher and learners through the tool's pages. Each step asserts what the tool stored and what
the fake Moodle was asked.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import requests
import yaml
from click.testing import CliRunner
from sqlalchemy import func, select

from lti_tool.cli import main
from lti_tool.jobs.registry import registry
from lti_tool.jobs.runner import InProcessRunner
from lti_tool.runtime import Runtime
from lti_tool.store.keys import public_jwks
from lti_tool.store.models.badges import Credential
from lti_tool.store.models.catalogue import MicroCredentialVersion, Offering
from lti_tool.store.models.core import Context, Membership, Person, Platform, ResourceLink
from lti_tool.store.models.evaluation import Decision, GradePassback, OfferingLineItem
from lti_tool.store.models.grades import GradeItem, Score, SyncRun
from lti_tool.store.models.jobs import Job
from lti_tool.web import create_app
from testkit.fakelms import CAPTURED_ORIGIN, FakeLms
from testkit.fakelms.data import load_fixture, moodle_course
from testkit.lti import (
    LAUNCH_URL,
    LTI,
    FormReader,
    Lti1p3Platform,
    auto_submit_form,
    platform_key,
    query_of,
)
from tests.launch.test_deep_linking import csrf_of

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / \
    "data-literacy-for-engineers.yaml"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
COURSE = ("2", "LTI101", "LTI Test Course 101")  # the captured course
# The captured course's people (NRPS): the teacher and three students with their Essay 1 marks
# (gradereport_user_get_grade_items): Stu1 78 and Stu2 92 pass at "proficient" (70), Stu3 65
# does not.
TEACHER = ("3", "Terry Teacher", "teacher1@example.com")
STU1 = ("4", "Stu1 Dent1", "student1@example.com")
STU3 = ("6", "Stu3 Dent3", "student3@example.com")
PASSBACK_LABEL = "Micro-credential: Data Literacy for Engineers"


# --- the actors -------------------------------------------------------------------------------

def cli(runtime: Runtime, *args: str, code: int = 0) -> str:
    """The operator's `lti-tool` (its output; fails the test on another exit code)."""
    result = CliRunner().invoke(main, list(args), obj={"runtime": runtime})
    assert result.exit_code == code, (args, result.output, result.exception)
    return result.stdout


def _path(url: str) -> str:
    """The tool's own URL as a test-client path."""
    assert url.startswith("http://127.0.0.1:8000"), url
    return url.removeprefix("http://127.0.0.1:8000")


class MoodleLms:
    """The fake Moodle's course as its users see it: launches signed by lti1p3platform, with
    the claims the captured Moodle sends, aimed at the fake's services."""

    def __init__(self, fake: FakeLms, platform: Lti1p3Platform) -> None:
        self.fake, self.platform = fake, platform
        self.activity: dict | None = None  # the placed activity: resource link id, custom

    def moodle_claims(self, user_id: str, *, deep_linking: bool) -> dict:
        name = ("moodle/id_token_instructor_deep_linking_request.json" if deep_linking
                else "moodle/id_token_student_resource_link.json")
        captured = json.loads(json.dumps(load_fixture(*name.split("/"))).replace(
            CAPTURED_ORIGIN, self.fake.base_url))
        keep = ("lis", "ext", "launch_presentation", "tool_platform", "custom")
        claims = {LTI + k: copy.deepcopy(captured[LTI + k]) for k in keep if LTI + k in captured}
        claims[LTI + "custom"]["moodle_user_id"] = user_id
        if self.activity is not None:
            claims[LTI + "custom"].update(self.activity["custom"])
        # The activity was placed without a grade item: Moodle sends only the container.
        claims[AGS_CLAIM] = {k: v for k, v in captured[AGS_CLAIM].items() if k != "lineitem"}
        claims[NRPS_CLAIM] = captured[NRPS_CLAIM]
        return claims

    def launch(self, client, person: tuple[str, str, str], roles: list[str], *,
               deep_linking: bool = False):
        """Browser steps: Moodle's login initiation -> tool login -> Moodle auth -> form."""
        user_id, name, email = person
        hint = "deep-linking" if deep_linking else "resource-link"
        login = client.get(_path(self.platform.login_url(user_id, message_hint=hint)))
        assert login.status_code == 302, login.get_data(as_text=True)
        location = login.headers["Location"]
        assert location.startswith(self.fake.base_url + "/mod/lti/auth.php?"), location
        link = None if deep_linking else self.activity["resource_link_id"]
        answer = self.platform.launch_form(
            query_of(location), user_id=user_id, roles=roles, name=name, email=email,
            context=COURSE, resource_link=link,
            deep_link_return=(f"{self.fake.base_url}/mod/lti/contentitem_return.php?course=2"
                              "&id=1&sesskey=s" if deep_linking else None),
            ags=(self.fake.lineitems_url, None), nrps=self.fake.memberships_url,
            extra_claims=self.moodle_claims(user_id, deep_linking=deep_linking))
        form = FormReader(auto_submit_form(answer["launch_url"], {
            "id_token": answer["id_token"], "state": answer["state"]}))
        assert form.action == LAUNCH_URL
        return client.post(_path(form.action), data=form.fields)


def counts_of(runtime: Runtime) -> dict[str, int]:
    """The rows a repeated launch or sync must not multiply."""
    with runtime.sessions() as db:
        return {model.__name__: db.scalar(select(func.count()).select_from(model))
                for model in (Person, Context, ResourceLink, Membership, Offering, GradeItem,
                              Score, Decision, Credential, GradePassback, OfferingLineItem,
                              Platform)}


def _jobs_settled(runtime: Runtime) -> bool:
    with runtime.sessions() as db:
        return not db.scalar(select(func.count()).select_from(Job).where(
            Job.status.not_in(("done", "failed"))))


def wait_for(predicate, what: str, seconds: float = 30) -> None:
    """Wait for a state (not a time): the job runner works in its own thread."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


# --- the story ------------------------------------------------------------------------------

def test_the_moodle_story(fast_runtime: Runtime, tmp_path: Path) -> None:
    runtime = fast_runtime
    key = platform_key("moodle-story")
    fake = FakeLms(kind="moodle", course=moodle_course(), tool_jwks=lambda: _tool_jwks(runtime))
    with fake.running():
        story(runtime, fake, key, tmp_path)


def _tool_jwks(runtime: Runtime) -> dict:
    with runtime.sessions() as db:
        keys = public_jwks(db, runtime.settings, "lti")
        db.commit()
        return keys


def story(runtime: Runtime, fake: FakeLms, key, tmp_path: Path) -> None:
    tool = create_app(runtime=runtime).test_client()

    # 1. Dynamic Registration as Moodle does it. The operator makes a one-time invite (the
    # trust model's default); Moodle's admin pastes it as the tool URL, and Moodle's
    # startltiadvregistration.php opens it with its OpenID configuration and a registration
    # token. Without the invite the tool refuses to register at all.
    moodle_query = {"openid_configuration": fake.base_url + "/mod/lti/openid-configuration.php",
                    "registration_token": fake.registration_token}
    refused = tool.get("/lti/register", query_string=moodle_query)
    assert refused.status_code == 403 and fake.tool_types == []
    invite_url = cli(runtime, "platform", "invite", "--note", "LTI101 Moodle").strip()
    invite_url = next(line for line in invite_url.splitlines() if "/lti/register?" in line)
    invite = parse_qs(urlparse(invite_url).query)["invite"][0]
    registered = tool.get("/lti/register", query_string={**moodle_query, "invite": invite})
    assert registered.status_code == 200, registered.get_data(as_text=True)
    assert "org.imsglobal.lti.close" in registered.get_data(as_text=True)
    [tool_type] = fake.tool_types
    sent = tool_type["registration"]
    tool_config = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert tool_config["domain"] == "127.0.0.1:8000"  # with the port (Moodle insists)
    assert sent["jwks_uri"] == "http://127.0.0.1:8000/lti/jwks"
    with runtime.sessions() as db:
        platform = db.scalar(select(Platform))
        assert (platform.issuer, platform.client_id, platform.status, platform.lms_kind,
                platform.registered_via) == (fake.base_url, fake.client_id, "active", "moodle",
                                             "dynamic")
        assert platform.key_set_url == fake.base_url + "/mod/lti/certs.php"
        assert platform.auth_token_url == fake.token_url
        assert [d.deployment_id for d in platform.deployments] == ["1"]
        platform_id = platform.id
    # The invite is spent: the same URL registers nothing more.
    again = tool.get("/lti/register", query_string={**moodle_query, "invite": invite})
    assert again.status_code in (400, 403, 409) and len(fake.tool_types) == 1
    # Moodle creates the tool type pending; its admin activates it in Manage tools.
    assert tool_type["state"] == "pending"
    tool_type["state"] = "configured"

    # Moodle's keyset is lti1p3platform's: the LMS signing every launch below.
    lti = Lti1p3Platform(issuer=fake.base_url, client_id=fake.client_id,
                         deployment_id=fake.deployment_id, key=key)
    fake.platform_jwks = lambda: lti.jwks
    moodle = MoodleLms(fake, lti)

    # 2. The Office's catalogue: the example Design Plan imported, submitted and approved.
    cli(runtime, "mc", "import", str(EXAMPLE))
    cli(runtime, "mc", "submit", "DLE-101", "--by", "Office <office@example.edu>")
    cli(runtime, "mc", "approve", "DLE-101", "--by", "Office <office@example.edu>")

    # 3. The teacher places the micro-credential by deep linking from Moodle's activity form.
    teacher = create_app(runtime=runtime).test_client()
    chooser = moodle.launch(teacher, TEACHER, [INSTRUCTOR], deep_linking=True)
    assert chooser.status_code == 303, chooser.get_data(as_text=True)
    page = teacher.get(chooser.headers["Location"]).get_data(as_text=True)
    assert "Data Literacy for Engineers" in page
    with runtime.sessions() as db:
        version_id = db.scalar(select(MicroCredentialVersion.id))
    returned = teacher.post("/lti/deep-link", data={"csrf_token": csrf_of(page),
                                                    "item": str(version_id)})
    form = FormReader(returned.get_data(as_text=True))
    assert form.action.startswith(fake.base_url + "/mod/lti/contentitem_return.php?")
    placed = requests.post(form.action, data=form.fields, timeout=10)
    assert placed.status_code == 200, placed.text  # Moodle verified the tool's signature
    [item] = fake.placed_items
    assert (item["type"], item["title"], item["url"]) == (
        "ltiResourceLink", "Data Literacy for Engineers", LAUNCH_URL)
    with runtime.sessions() as db:
        offering = db.scalar(select(Offering))
        assert item["custom"] == {"offering_id": str(offering.id)}
        offering_id = offering.id
    moodle.activity = {"resource_link_id": "2", "custom": item["custom"]}  # mdl_lti id 2

    # The teacher opens the activity and chooses grade passback for the offering.
    opened = moodle.launch(teacher, TEACHER, [INSTRUCTOR])
    assert opened.status_code == 303 and opened.headers["Location"].startswith("/instructor/")
    settings_page = teacher.get(f"/instructor/offerings/{offering_id}")
    assert settings_page.status_code == 200
    assert "new column" in settings_page.get_data(as_text=True)  # what passback does, plainly
    with runtime.sessions() as db:
        offering = db.get(Offering, offering_id)
        kept = {"reevaluation_policy": offering.reevaluation_policy,
                "reevaluation_window_days": str(offering.reevaluation_window_days)}
    chosen = teacher.post(f"/instructor/offerings/{offering_id}", data={
        "csrf_token": csrf_of(settings_page.get_data(as_text=True)), **kept,
        "grade_passback": "on"})
    assert chosen.status_code == 303, chosen.get_data(as_text=True)
    with runtime.sessions() as db:
        assert db.get(Offering, offering_id).grade_passback is True
        context = db.scalar(select(Context))
        assert (context.context_id, context.ags_lineitems_url, context.nrps_url) == (
            "2", fake.lineitems_url, fake.memberships_url)
        context_id = context.id

    # 4. The operator stores Moodle's web-service token; the REST base defaults from the issuer
    # (Moodle's wwwroot), and the connection check passes.
    secret = tmp_path / "ws-token"
    secret.write_text(fake.ws_token)
    secret.chmod(0o600)
    stored = cli(runtime, "platform", "rest-token", str(platform_id), "--file", str(secret))
    assert fake.base_url + "/webservice/rest/server.php" in stored
    checked = json.loads(cli(runtime, "platform", "check", str(platform_id), "--json"))
    assert all(f["ok"] for f in checked), [f for f in checked if not f["ok"]]

    # 5. The sync of an ordinary course reads the AGS line items AND the web-service gradebook
    # (simple direct grading: no rubric to read, and nothing fails).
    before_sync = len(fake.log)
    cli(runtime, "sync", "--context", str(context_id))
    asked = [path for _, path in fake.log[before_sync:]]
    assert any("/lineitems" in p for p in asked) and any("/memberships" in p for p in asked)
    called = {call["wsfunction"]: call for call in fake.ws_calls}
    assert {"gradereport_user_get_grade_items", "core_grades_get_gradeitems",
            "core_grading_get_definitions"} <= set(called), sorted(called)
    # activeonly=1 on this course is the captured invalid_method_name exception; the tool
    # asks activeonly=0 and reads the areas' activemethod null as "no rubric".
    assert called["core_grading_get_definitions"]["activeonly"] == "0"
    assert all(call["moodlewsrestformat"] == "json" for call in fake.ws_calls)
    with runtime.sessions() as db:
        run = db.scalar(select(SyncRun).order_by(SyncRun.id.desc()))
        assert run.status == "succeeded", (run.status, run.error)
        labels = sorted(db.scalars(select(GradeItem.label).where(
            GradeItem.context_id == context_id, GradeItem.active.is_(True))))
    assert {"Essay 1", "Quiz-like Assignment 2", "Participation (manual)",
            "Breakout (LTI 1.3)"} <= set(labels), labels
    # AGS and the web services list the LTI activity's column; it is stored once (defect
    # found by this story: it was stored twice, and a mapping by its title was ambiguous).
    assert labels.count("Breakout (LTI 1.3)") == 1, labels
    # Simple direct grading means "no rubric here", not a failed source: no warning.
    assert run.warnings == [] and set(run.sources) == {"ags", "moodle_ws", "nrps"}
    with runtime.sessions() as db:
        marks = dict(db.execute(
            select(Person.sub, Score.score).join(Score, Score.person_id == Person.id)
            .join(GradeItem, GradeItem.id == Score.grade_item_id)
            .where(GradeItem.label == "Essay 1")).all())
    assert {sub: float(mark) for sub, mark in marks.items()} == {"4": 78, "5": 92, "6": 65}

    # 6. The Office maps every outcome to "Essay 1" by its gradebook title. The job runner of
    # the web process is up (it waits 60 s between polls, with no periodic jobs): passback
    # must come from the decision's own commit waking it, not from a poll or the 5-minute job.
    outcomes = [o["code"] for o in yaml.safe_load(EXAMPLE.read_text())["outcomes"]]
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(yaml.safe_dump({"outcomes": {
        code: [{"item": "Essay 1", "weight": 1}] for code in outcomes}}))
    job_runner = InProcessRunner(runtime, registry(), poll=60, periodic=False).start()
    try:
        cli(runtime, "offering", "map", str(offering_id), str(mapping))
        wait_for(lambda: any(s["userId"] == "4" and s.get("scoreGiven") == 100
                             for s in fake.posted_scores), "the pass reaching Moodle")
        wait_for(lambda: _jobs_settled(runtime), "the passback jobs to finish")
    finally:
        job_runner.stop()
    with runtime.sessions() as db:
        decisions = dict(db.execute(select(Person.sub, Decision.status).join(
            Decision, Decision.person_id == Person.id)).all())
    # Stu3 (65) stays in progress until the assessment window closes (then: failed).
    assert decisions == {"4": "passed", "5": "passed", "6": "in_progress"}, decisions

    # 7. Grade passback reached Moodle promptly: one column, made once, with the pass as 100.
    [column] = fake.created_line_items
    assert (column["label"], column["scoreMaximum"], column["tag"], column["resourceId"]) == (
        PASSBACK_LABEL, 100, "micro-credential", f"offering-{offering_id}")
    column_id = int(column["id"].split("/lineitems/")[1].split("/")[0])
    assert column_id == 10  # the next grade item id after the course's nine
    assert fake.course.results[column_id]["4"].score == 100
    assert fake.course.results[column_id]["5"].score == 100
    assert fake.course.results[column_id]["6"].score < 100
    with runtime.sessions() as db:
        assert {row.status for row in db.scalars(select(GradePassback))} == {"sent"}
        assert db.scalar(select(OfferingLineItem.lineitem_url)) == column["id"]

    # 8. The credentials: issued to both who passed, really signed, verified by the CLI.
    with runtime.sessions() as db:
        issued = dict(db.execute(select(Person.sub, Credential.public_id).join(
            Credential, Credential.person_id == Person.id)).all())
    assert set(issued) == {"4", "5"}
    document = tmp_path / "stu1.json"
    cli(runtime, "credentials", "export", issued["4"], "--format", "json", "--out",
        str(document))
    credential = json.loads(document.read_text())
    assert "OpenBadgeCredential" in credential["type"]
    assert credential["credentialSubject"]["achievement"]["name"] == \
        "Data Literacy for Engineers"
    report = json.loads(cli(runtime, "verify", str(document), "--json"))
    assert report["valid"] is True, report
    tampered = tmp_path / "tampered.json"
    credential["credentialSubject"]["achievement"]["name"] = "Something else"
    tampered.write_text(json.dumps(credential))
    assert json.loads(cli(runtime, "verify", str(tampered), "--json", code=1))["valid"] is False

    # 9. Stu1 opens the activity: the learner page says passed and shows the badge.
    learner = create_app(runtime=runtime).test_client()
    opened = moodle.launch(learner, STU1, [LEARNER])
    assert opened.status_code == 303 and opened.headers["Location"].startswith("/learner/")
    page = learner.get(opened.headers["Location"])
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "passed" in text and "Your badge" in text
    assert "Data Literacy for Engineers" in text
    public = tool.get(f"/credentials/{issued['4']}")
    assert public.status_code == 200 and "Valid" in public.get_data(as_text=True)

    # 10. Everyone launches again and the course is synced twice more: no second column, no
    # duplicate rows, no score sent again for an unchanged decision.
    settled = counts_of(runtime)
    scores_sent = len(fake.posted_scores)
    # As in production, the teacher's launch starts a background sync of the course.
    syncing = Runtime(settings=dataclasses.replace(runtime.settings, sync_after_launch=True),
                      engine=runtime.engine, sessions=runtime.sessions)
    job_runner = InProcessRunner(runtime, registry(), poll=60, periodic=False).start()
    try:
        for person, roles in ((TEACHER, [INSTRUCTOR]), (STU1, [LEARNER]), (STU3, [LEARNER])):
            again = moodle.launch(create_app(runtime=syncing).test_client(), person, roles)
            assert again.status_code == 303, again.get_data(as_text=True)
        # the launch stored a durable sync job; the runner takes it
        wait_for(lambda: _jobs_settled(runtime), "the sync the teacher's launch asked for",
                 seconds=120)
        with runtime.sessions() as db:
            assert db.scalar(select(SyncRun.trigger).order_by(SyncRun.id.desc())) == "launch"
        for _ in range(2):
            cli(runtime, "sync", "--context", str(context_id))
            wait_for(lambda: _jobs_settled(runtime), "the jobs after a sync")
    finally:
        job_runner.stop()
    assert counts_of(runtime) == settled
    assert len(fake.created_line_items) == 1
    assert fake.count("/lineitems?type_id=1", "POST") == 1
    assert len(fake.posted_scores) == scores_sent
    with runtime.sessions() as db:
        run = db.scalar(select(SyncRun).order_by(SyncRun.id.desc()))
        assert run.status == "succeeded" and run.warnings == []
        labels = list(db.scalars(select(GradeItem.label).where(
            GradeItem.context_id == context_id, GradeItem.active.is_(True))))
    # Moodle now lists the tool's own column among its grade items; it is never a source.
    listed = requests.post(fake.base_url + "/webservice/rest/server.php", timeout=10, data={
        "wstoken": fake.ws_token, "wsfunction": "gradereport_user_get_grade_items",
        "moodlewsrestformat": "json", "courseid": "2"}).json()
    assert PASSBACK_LABEL in {g["itemname"] for g in listed["usergrades"][0]["gradeitems"]}
    with runtime.sessions() as db:
        assert not db.scalar(select(func.count()).select_from(GradeItem).where(
            GradeItem.label == PASSBACK_LABEL))
    assert sorted(labels) == ["Breakout (LTI 1.3)", "Essay 1", "Participation (manual)",
                              "Quiz-like Assignment 2", "Score", "Time Taken",
                              "Tool-created line item", "Tool-created line item"]
