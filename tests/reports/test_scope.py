"""One installation, two institutions: each Office's report, survey questions, stakeholder
links and improvement plan hold only its own rows, on the pages and in the CLI.

Both institutions get the same seeded year (tests/reports/seed.py), so a single leaked row in
either direction changes a count of the golden report; each also gets rows of its own (survey
questions, a stakeholder link and its answer, an improvement action) that the other never sees.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from lti_tool.domain.surveys import LIKERT, TEXT, Question
from lti_tool.reports import actions as plan
from lti_tool.reports import surveys
from lti_tool.reports.render import render_json
from lti_tool.reports.service import build_report
from lti_tool.store.models.core import Institution
from lti_tool.store.sessions import start_session
from lti_tool.web.auth import CSRF_HEADER
from tests.conftest import session_headers
from tests.pages.test_authorization_matrix import csrf_for
from tests.reports.seed import YEAR, SeededYear, seed_year
from tests.reports.test_report import GOLDEN


class Tenant:
    def __init__(self, db, seeded: SeededYear, label: str) -> None:
        self.seeded = seeded
        self.label = label
        self.slug = db.get(Institution, seeded.institution_id).slug
        self.token = start_session(db, platform_id=seeded.platform_id,
                                   person_id=seeded.people["office"], context_id=None,
                                   resource_link_id=None, role="admin")
        surveys.save_questions(db, seeded.institution_id, [
            Question(f"{label.lower()}_q", LIKERT,
                     {"en": f"Question only {label} asks", "tr": "Soru"}),
            Question("c", TEXT, {"en": "Anything else?", "tr": "Başka?"})])
        self.link = surveys.create_link(db, institution_id=seeded.institution_id,
                                        platform_id=seeded.platform_id,
                                        mc_id=seeded.mcs["DATA-101"], label=f"Partner {label}")
        surveys.record_feedback(db, self.link, role="employer", themes=["relevance"],
                                rating="4", text=f"Feedback only {label} received.")
        self.action = plan.create_action(
            db, institution_id=seeded.institution_id, platform_id=seeded.platform_id,
            person_id=seeded.people["office"],
            form={"year": str(YEAR), "finding": f"Finding of {label}",
                  "action": f"Action of {label}", "owner": f"Owner {label}",
                  "due_on": "2025-01-31"})


@pytest.fixture
def tenants(db) -> tuple[Tenant, Tenant]:
    a = seed_year(db)
    b = seed_year(db, issuer="https://lms-b.invalid", tag="-b")
    assert a.institution_id != b.institution_id
    found = Tenant(db, a, "A"), Tenant(db, b, "B")
    db.commit()
    return found


def _without_own_rows(report: dict) -> dict:
    """The report minus what each tenant has of its own (name, questions, texts, actions)."""
    report = dict(report)
    for key in ("institution", "questions", "actions", "stakeholder_texts"):
        report.pop(key)
    for row in report["micro_credentials"]:
        row["mc"].pop("id")
        row.pop("satisfaction")  # the tenant's own question codes
        row.pop("stakeholders")  # one answer of its own through its link
    for key in ("satisfaction", "stakeholders"):
        report["overall"].pop(key)
    for scope in [report["year_on_year"]["overall"], *report["year_on_year"]["per_mc"].values()]:
        scope.pop("satisfaction.responses")
        scope.pop("stakeholders.n")
    return report


def test_each_report_counts_only_its_own_institution(db, settings, tenants) -> None:
    expected = _without_own_rows(json.loads(GOLDEN.read_text()))
    for tenant, other in (tenants, tenants[::-1]):
        produced = json.loads(render_json(build_report(
            db, settings, institution_id=tenant.seeded.institution_id, year=YEAR)))
        assert _without_own_rows(produced) == expected
        codes = [q["code"] for q in produced["questions"]]
        assert codes == [f"{tenant.label.lower()}_q", "c"]
        assert f"Finding of {tenant.label}" in [a["finding"] for a in produced["actions"]]
        text = json.dumps(produced)
        for own in (f"Finding of {other.label}", f"{other.label.lower()}_q",
                    f"Feedback only {other.label}"):
            assert own not in text


def test_the_office_pages_show_only_their_institution(app, db, tenants) -> None:
    client = app.test_client()
    for tenant, other in (tenants, tenants[::-1]):
        h = session_headers(tenant.token)
        report = client.get(f"/admin/report?year={YEAR}", headers=h).get_data(True)
        assert f"Finding of {tenant.label}" in report
        assert f"Finding of {other.label}" not in report
        download = client.get(f"/admin/report/{YEAR}/json", headers=h)
        figures = json.loads(download.get_data(True))
        assert figures["overall"]["participation"]["enrolled"] == 23  # one seeded year's
        assert figures["institution"] == db.get(
            Institution, tenant.seeded.institution_id).name
        questions = client.get("/admin/surveys", headers=h).get_data(True)
        assert f"Question only {tenant.label} asks" in questions
        assert f"Question only {other.label} asks" not in questions
        links = client.get("/admin/feedback-links", headers=h).get_data(True)
        assert tenant.link.token in links and other.link.token not in links
        home = client.get("/admin/", headers=h).get_data(True)
        assert f"Action of {tenant.label}" in home  # overdue since January 2025
        assert f"Action of {other.label}" not in home
        # The other institution's rows answer 404 and stay as they are.
        post = dict(h, **{CSRF_HEADER: csrf_for(app, client, tenant.token)})
        answer = client.post(f"/admin/actions/{other.action.id}", headers=post,
                             data={"status": "done", "result": "taken over"})
        assert answer.status_code == 404
        answer = client.post("/admin/feedback-links", headers=post,
                             data={"micro_credential_id": other.seeded.mcs["DATA-101"]})
        assert answer.status_code == 404
        answer = client.post("/admin/actions", headers=post, data={
            "year": str(YEAR), "micro_credential_id": other.seeded.mcs["PY-201"],
            "finding": "x", "action": "y", "owner": "z", "due_on": "2026-01-01"})
        assert answer.status_code == 404
    db.expire_all()
    assert [a.status for a in (tenants[0].action, tenants[1].action)] == ["planned"] * 2
    assert len(surveys.links_of(db, tenants[0].seeded.institution_id)) == 1
    assert len(surveys.links_of(db, tenants[1].seeded.institution_id)) == 1


def test_the_cli_needs_the_institution_when_there_are_several(runtime, tenants, db) -> None:
    from lti_tool.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["report", "--year", str(YEAR), "--format", "json"],
                           obj={"runtime": runtime})
    assert result.exit_code != 0 and "--institution SLUG" in result.output
    for tenant, other in (tenants, tenants[::-1]):
        result = runner.invoke(main, ["report", "--year", str(YEAR), "--format", "json",
                                      "--institution", tenant.slug], obj={"runtime": runtime})
        assert result.exit_code == 0, result.output
        produced = json.loads(result.stdout)
        assert produced["overall"]["participation"]["enrolled"] == 23
        assert produced["overall"]["credentials"]["issued"] == 14
        assert f"Finding of {tenant.label}" in result.stdout
        assert f"Finding of {other.label}" not in result.stdout


def test_a_learner_is_asked_their_institutions_questions(db, tenants) -> None:
    for tenant in tenants:
        seeded = tenant.seeded
        prompts = surveys.learner_prompts(
            db, institution_id=seeded.institution_id, platform_id=seeded.platform_id,
            person_id=seeded.people["B8"], items=[(seeded.offerings["B"], "failed", False)])
        assert [q.code for q in prompts.questions] == [f"{tenant.label.lower()}_q", "c"]
    assert db.scalars(select(Institution.slug)).all()
