"""Surveys through the pages: satisfaction on claiming, follow-ups by page and by e-mail (a real
local SMTP server, aiosmtpd), the single-use signed link, stakeholder feedback, reflections,
the improvement plan on the Office home."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select

from lti_tool.reports import surveys
from lti_tool.reports.routes import FEEDBACK_COOKIE
from lti_tool.store.models.badges import Credential
from lti_tool.store.models.core import Person, Platform, RateLimitCounter
from lti_tool.store.models.reports import (
    ContactConsent,
    FollowUp,
    ImprovementAction,
    StakeholderFeedback,
    SurveyComment,
    SurveyResponse,
)
from lti_tool.web.auth import CSRF_HEADER
from tests.pages.test_authorization_matrix import csrf_for

SMTP_PORT = 8120  # the reports helper's ports: 8120-8129


def reset_rate_limits(db) -> None:
    db.execute(delete(RateLimitCounter))
    db.commit()


def institution_of(db, course) -> int:
    return db.get(Platform, course.platform_id).institution_id


def headers(app, client, token: str) -> dict:
    return {"X-LTI-Tool-Session": token, CSRF_HEADER: csrf_for(app, client, token)}


def test_the_survey_appears_after_claiming_and_takes_one_answer(app, db, story) -> None:
    client = app.test_client()
    h = headers(app, client, story.tokens["learner2"])
    page = client.get("/learner/", headers=h).get_data(True)
    assert "How was this micro-credential for you?" not in page  # not before claiming
    public_id = db.scalar(select(Credential.public_id).where(
        Credential.person_id == story.people["learner2"]))
    assert client.post(f"/learner/credentials/{public_id}/accept", headers=h).status_code == 303
    page = client.get("/learner/", headers=h).get_data(True)
    assert "How was this micro-credential for you?" in page
    url = f"/learner/survey/{story.offering_id}"
    bad = client.post(url, headers=h, data={"action": "answer", "q1": "9"})
    assert bad.status_code == 400
    assert db.scalar(select(func.count()).select_from(SurveyResponse)) == 0
    reply = client.post(url, headers=h, data={"action": "answer", "q1": "5", "q3": "2",
                                              "comment": "More examples.",
                                              "consent_shown": "1", "email_follow_ups": "yes"})
    assert reply.status_code == 303
    again = client.post(url, headers=h, data={"action": "skip"})
    assert again.status_code == 409
    db.expire_all()
    response = db.scalar(select(SurveyResponse))
    assert response.ratings == {"q1": 5, "q3": 2} and response.trigger == "claimed"
    comment = db.scalar(select(SurveyComment))
    assert comment.text == "More examples."
    assert not hasattr(comment, "person_id")  # never attributed: no author column
    assert db.scalar(select(ContactConsent.email_follow_ups)) is True
    # The choice is withdrawn from the learner page at any time (an unticked box sends nothing).
    assert "Follow-up questions by e-mail" in client.get("/learner/", headers=h).get_data(True)
    assert client.post("/learner/consent", headers=h, data={}).status_code == 303
    db.expire_all()
    assert db.scalar(select(ContactConsent.email_follow_ups)) is False
    assert "How was this micro-credential for you?" not in client.get(
        "/learner/", headers=h).get_data(True)


def test_a_learner_who_did_not_pass_may_skip_and_one_in_progress_is_not_asked(app, db,
                                                                           story) -> None:
    client = app.test_client()
    failed = headers(app, client, story.tokens["learner1"])
    assert "Skip the survey" in client.get("/learner/", headers=failed).get_data(True)
    assert client.post(f"/learner/survey/{story.offering_id}", headers=failed,
                       data={"action": "skip"}).status_code == 303
    db.expire_all()
    row = db.scalar(select(SurveyResponse))
    assert row.skipped and row.trigger == "not_passed" and row.ratings == {}


def test_follow_ups_fall_due_and_the_learner_page_asks_them(app, db, story) -> None:
    credential = db.scalar(select(Credential).where(
        Credential.person_id == story.people["learner2"]))
    credential.issued_at = datetime.now(UTC) - timedelta(days=200)
    db.commit()
    client = app.test_client()
    h = headers(app, client, story.tokens["learner2"])
    page = client.get("/learner/", headers=h).get_data(True)
    assert "You earned this micro-credential 6 months ago." in page
    follow_up = db.scalar(select(FollowUp))
    assert follow_up.months == 6
    url = f"/learner/follow-ups/{follow_up.id}"
    assert client.post(url, headers=h, data={"outcome": ["not_yet", "promotion"]}
                       ).status_code == 400
    assert client.post(url, headers=h, data={"outcome": ["promotion"]}).status_code == 303
    assert client.post(url, headers=h, data={"outcome": ["promotion"]}).status_code == 409
    other = headers(app, client, story.tokens["learner1"])
    assert client.post(url, headers=other, data={"outcome": ["promotion"]}).status_code == 404
    db.expire_all()
    assert db.get(FollowUp, follow_up.id).outcomes == ["promotion"]


@pytest.fixture
def smtp_server():
    """A real SMTP server on loopback (aiosmtpd), collecting what it receives."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Collect(Message):
        def handle_message(self, message) -> None:
            received.append(message)

    controller = Controller(Collect(), hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    yield received
    controller.stop()


def test_follow_ups_are_mailed_once_with_a_signed_single_use_link(app, db, story, settings,
                                                                  smtp_server) -> None:
    mail = dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=SMTP_PORT,
                               smtp_from="office@example.edu")
    person = db.get(Person, story.people["learner2"])
    person.email, person.locale = "learner2@example.edu", "tr"
    credential = db.scalar(select(Credential).where(Credential.person_id == person.id))
    credential.issued_at = datetime.now(UTC) - timedelta(days=380)
    db.commit()
    counts = surveys.send_due_follow_ups(db, mail)
    db.commit()
    assert counts == {"created": 1, "sent": 0, "failed": 0}  # no consent yet: no e-mail
    surveys.set_consent(db, institution_id=institution_of(db, story), platform_id=story.platform_id,
                        person_id=person.id, email_ok=True)
    db.commit()
    assert surveys.send_due_follow_ups(db, mail) == {"created": 0, "sent": 1, "failed": 0}
    db.commit()
    assert surveys.send_due_follow_ups(db, mail)["sent"] == 0  # once only
    assert len(smtp_server) == 1
    message = smtp_server[0]
    assert message["To"] == "learner2@example.edu"
    from email.header import decode_header, make_header

    assert str(make_header(decode_header(message["Subject"]))) == surveys.MAIL_SUBJECT["tr"]
    body = message.get_payload(decode=True).decode()
    link = re.search(r"http://127\.0\.0\.1:8000(/follow-up/\S+)", body).group(1)
    assert "12 ay önce" in body

    client = app.test_client()
    token = link.rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"/follow-up/{tampered}").status_code == 404
    forged = surveys.URLSafeSerializer("another-secret", salt=surveys.FOLLOW_UP_SALT).dumps(
        {"f": 1, "n": db.scalar(select(FollowUp.nonce))})
    assert client.get(f"/follow-up/{forged}").status_code == 404
    page = client.get(link)
    assert page.status_code == 200 and "Has this micro-credential helped you?" in \
        page.get_data(True)
    assert client.post(link, data={"outcome": "bogus"}).status_code == 400
    assert client.post(link, data={"outcome": ["new_job", "recognised_credit"]}
                       ).status_code == 200
    assert client.post(link, data={"outcome": ["promotion"]}).status_code == 409
    assert client.get(link).status_code == 409
    db.expire_all()
    assert db.scalar(select(FollowUp.outcomes)) == ["new_job", "recognised_credit"]


def test_an_unreachable_smtp_server_is_recorded_not_raised(db, story, settings) -> None:
    mail = dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=SMTP_PORT + 9,
                               smtp_timeout_seconds=2)
    person = db.get(Person, story.people["learner2"])
    person.email = "learner2@example.edu"
    db.scalar(select(Credential).where(Credential.person_id == person.id)).issued_at = \
        datetime.now(UTC) - timedelta(days=200)
    surveys.set_consent(db, institution_id=institution_of(db, story), platform_id=story.platform_id,
                        person_id=person.id, email_ok=True)
    db.commit()
    assert surveys.send_due_follow_ups(db, mail)["failed"] == 1
    assert "Connection" in db.scalar(select(FollowUp.email_error))


def test_stakeholder_feedback_link_is_public_csrf_safe_bounded_and_rate_limited(app, db,
                                                                              story) -> None:
    client = app.test_client()
    office = headers(app, client, story.tokens["admin"])
    from lti_tool.store.models.catalogue import Offering

    mc_id = db.get(Offering, story.offering_id).mc_version.micro_credential_id
    assert client.post("/admin/feedback-links", headers=office,
                       data={"micro_credential_id": mc_id, "label": "Acme HR"}
                       ).status_code == 303
    page = client.get("/admin/feedback-links", headers=office).get_data(True)
    url = re.search(r"http://127\.0\.0\.1:8000(/feedback/[\w-]+)", page).group(1)

    stranger = app.test_client()
    assert stranger.get("/feedback/not-a-token").status_code == 404
    form = stranger.get(url)
    assert form.status_code == 200 and FEEDBACK_COOKIE in form.headers["Set-Cookie"]
    assert "SameSite=Strict" in form.headers["Set-Cookie"]
    form_token = re.search(r'name="form_token" value="(\w+)"', form.get_data(True)).group(1)
    good = {"form_token": form_token, "role": "employer", "themes": ["relevance"],
            "rating": "4", "text": "Useful."}
    # A cross-site post carries no (SameSite=Strict) cookie: refused, nothing stored.
    cross_site = app.test_client()
    assert cross_site.post(url, data=good).status_code == 403
    too_long = stranger.post(url, data={**good, "text": "x" * 2500})
    assert too_long.status_code == 400 and "x" * 100 in too_long.get_data(True)
    assert stranger.post(url, data={**good, "role": "ceo"}).status_code == 400
    assert db.scalar(select(func.count()).select_from(StakeholderFeedback)) == 0
    assert stranger.post(url, data=good).status_code == 429  # 3 posts a minute at most
    reset_rate_limits(db)
    assert stranger.post(url, data=good).status_code == 200
    db.expire_all()
    row = db.scalar(select(StakeholderFeedback))
    assert (row.role, row.themes, row.rating, row.text) == ("employer", ["relevance"], 4,
                                                           "Useful.")


def test_instructor_reflection_and_the_improvement_plan(app, db, story) -> None:
    client = app.test_client()
    teacher = headers(app, client, story.tokens["instructor"])
    url = f"/instructor/reflection/{story.offering_id}"
    assert client.post(url, headers=teacher, data={"worked": "", "change": ""}
                       ).status_code == 400
    assert client.post(url, headers=teacher, data={"worked": "Clinics", "change": "Rubric"}
                       ).status_code == 303
    assert "Clinics" in client.get(url, headers=teacher).get_data(True)

    office = headers(app, client, story.tokens["admin"])
    kept = client.post("/admin/actions", headers=office, data={
        "year": "2025", "finding": "Low q3", "action": "Announce workload", "owner": "Ayşe",
        "due_on": "not a date"})
    assert kept.status_code == 400
    assert client.post("/admin/actions", headers=office, data={
        "year": "2025", "finding": "Low q3", "action": "Announce workload", "owner": "Ayşe",
        "due_on": "2026-01-15"}).status_code == 303
    home = client.get("/admin/", headers=office).get_data(True)
    assert "Overdue improvement actions" in home and "Announce workload" in home
    action = db.scalar(select(ImprovementAction))
    assert client.post(f"/admin/actions/{action.id}", headers=office,
                       data={"status": "done", "result": "Workload on the course page"}
                       ).status_code == 303
    assert "Overdue improvement actions" not in client.get("/admin/", headers=office
                                                          ).get_data(True)
    report = client.get("/admin/report?year=2026", headers=office).get_data(True)
    assert "Workload on the course page" in report and "carried over" in report


def test_the_office_edits_the_questions_in_both_languages(app, db, story) -> None:
    client = app.test_client()
    office = headers(app, client, story.tokens["admin"])
    form = {"code-0": "q1", "kind-0": "likert", "en-0": "Clear?", "tr-0": "Açık mıydı?",
            "code-1": "c", "kind-1": "text", "en-1": "Why?", "tr-1": "Neden?"}
    assert client.post("/admin/surveys", headers=office,
                       data={**form, "kind-1": "likert"}).status_code == 400
    assert client.post("/admin/surveys", headers=office, data=form).status_code == 303
    assert [q.code for q in surveys.questions_of(db, institution_of(db, story))] == ["q1", "c"]
    client.post(f"/learner/credentials/{db.scalar(select(Credential.public_id))}/accept",
                headers=headers(app, client, story.tokens["learner2"]))
    page = client.get("/learner/?lang=tr", headers=headers(app, client,
                                                           story.tokens["learner2"]))
    assert "Açık mıydı?" in page.get_data(True)


def test_shares_from_the_learner_page_are_counted_once_per_channel(app, db, story) -> None:
    from lti_tool.store.models.core import AuditEntry

    client = app.test_client()
    h = headers(app, client, story.tokens["learner2"])
    public_id = db.scalar(select(Credential.public_id))
    for _ in range(2):
        reply = client.get(f"/learner/credentials/{public_id}/share/linkedin", headers=h)
        assert reply.status_code == 302 and reply.location.startswith(
            "https://www.linkedin.com/profile/add?")
        assert "sid=" not in reply.location
    assert client.get(f"/learner/credentials/{public_id}/share/page", headers=h
                      ).location.endswith(f"/credentials/{public_id}")
    assert db.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "credential.shared")) == 2
    other = headers(app, client, story.tokens["learner1"])
    assert client.get(f"/learner/credentials/{public_id}/share/page", headers=other
                      ).status_code == 404


def test_the_feedback_limit_is_shared_by_every_worker(runtime, db, story) -> None:
    """Two apps on one database (two `serve` workers) count the posts of one address together,
    in the database's `rate_limit_counter` table: the fourth post within a minute is refused
    whichever worker gets it."""
    from lti_tool.web import create_app

    link = surveys.create_link(db, institution_id=institution_of(db, story),
                               platform_id=story.platform_id, mc_id=_mc_id(db, story),
                               label="Acme")
    db.commit()
    workers = [create_app(runtime=runtime).test_client() for _ in range(2)]
    statuses = [workers[n % 2].post(f"/feedback/{link.token}", data={"role": "employer"}
                                    ).status_code for n in range(4)]
    assert statuses == [403, 403, 403, 429]  # no form cookie: refused, and counted
    keys = db.scalars(select(RateLimitCounter.key)).all()
    assert any("stakeholder_feedback" in key for key in keys), keys
    assert db.scalar(select(func.count()).select_from(StakeholderFeedback)) == 0


def _mc_id(db, story) -> int:
    from lti_tool.store.models.catalogue import Offering

    return db.get(Offering, story.offering_id).mc_version.micro_credential_id
