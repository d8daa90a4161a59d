"""The instructor overview: grid with words for colours, filters, sorting, CSV, scoping."""

from __future__ import annotations

import csv
import io

from testkit.seed import seed_course, seed_decision, seed_offering
from tests.conftest import session_headers


def overview(client, token: str, **args) -> str:
    reply = client.get("/instructor/", headers=session_headers(token), query_string={**args})
    assert reply.status_code == 200, reply.get_data(True)[:500]
    return reply.get_data(as_text=True)


def grid(html: str) -> str:
    """Only the learners x outcomes table of the page."""
    return html[html.index('<table class="grid"'):html.index("</table>", html.index(
        '<table class="grid"'))]


def seed_three(db, course):
    """learner1 failed (eligible), learner2 passed, learner3 not yet assessed."""
    seed_decision(db, course, "learner1", [80, 60, None], status="failed")
    seed_decision(db, course, "learner2", [90, 75, 88], status="passed")


def test_grid_cells_say_in_words_what_the_colour_says(client, db) -> None:
    course = seed_offering(db, seed_course(db, learners=3))
    seed_three(db, course)
    html = overview(client, course.tokens["instructor"])
    assert "Learner1 Example" in html and "Learner3 Example" in html
    assert "✓ Proficient · 80%" in html and "(attained)" in html
    assert "✗ Developing · 60%" in html and "(below the threshold)" in html
    assert "not yet assessed" in html
    assert "<dt>Passed</dt><dd>1</dd>" in html
    assert "<dt>Failed</dt><dd>1 (1 eligible for re-evaluation)</dd>" in html
    # one grant form, offering exactly the eligible learner, posting to the evaluation area
    form = html[html.index('id="grant-person"'):html.index("</select>", html.index(
        'id="grant-person"'))]
    assert f'value="{course.people["learner1"]}"' in form and "Learner2" not in form
    assert f'action="/instructor/offerings/{course.offering_id}/reevaluation' in html


def test_filters_and_sorting(client, db) -> None:
    course = seed_offering(db, seed_course(db, learners=3))
    seed_three(db, course)
    token = course.tokens["instructor"]
    passed = grid(overview(client, token, show="passed"))
    assert "Learner2 Example" in passed and "Learner1 Example" not in passed
    eligible = grid(overview(client, token, show="eligible"))
    assert "Learner1 Example" in eligible and "Learner2 Example" not in eligible
    pending = grid(overview(client, token, show="not_assessed"))
    assert "Learner3 Example" in pending and "Learner1 Example" not in pending
    by_lo2 = grid(overview(client, token, sort="LO2", dir="desc"))
    assert by_lo2.index("Learner2 Example") < by_lo2.index("Learner1 Example")
    assert 'aria-sort="descending"' in by_lo2
    by_lo2_up = grid(overview(client, token, sort="LO2", dir="asc"))
    assert by_lo2_up.index("Learner1 Example") < by_lo2_up.index("Learner2 Example")


def test_csv_export_follows_the_filter_and_defuses_formulas(client, db) -> None:
    course = seed_offering(db, seed_course(db, learners=3))
    seed_three(db, course)
    from lti_tool.store.models.core import Person

    db.get(Person, course.people["learner1"]).name = "=HYPERLINK(1)"
    db.commit()
    reply = client.get("/instructor/overview.csv",
                       headers=session_headers(course.tokens["instructor"]),
                       query_string={"show": "failed"})
    assert reply.status_code == 200 and reply.mimetype == "text/csv"
    text = reply.get_data(True)
    assert text.startswith("\ufeff")  # Excel reads UTF-8 only with a BOM
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0][:3] == ["Name", "Email", "Status"] and "LO1 level" in rows[0]
    assert len(rows) == 2 and rows[1][0] == "'=HYPERLINK(1)" and rows[1][2] == "failed"
    assert rows[1][3:6] == ["Proficient", "Developing", ""]
    percents = [cell for cell in rows[1][6:] if cell]
    assert percents and all("." in p or p.isdigit() for p in percents)
    turkish = client.get("/instructor/overview.csv",
                         headers=session_headers(course.tokens["instructor"]),
                         query_string={"show": "failed", "lang": "tr"},
                         ).get_data(True).removeprefix("\ufeff")
    tr_rows = list(csv.reader(io.StringIO(turkish), delimiter=";"))
    assert tr_rows[0][:4] == ["Ad", "E-posta", "Durum", "LO1 düzeyi"]  # headers in Turkish
    assert len(tr_rows[1]) == len(rows[1])
    tr_percents = [cell for cell in tr_rows[1][6:] if cell]
    assert [p.replace(",", ".") for p in tr_percents] == percents
    assert any("," in p for p in tr_percents) or all(p.isdigit() for p in percents)


def test_an_offering_of_another_course_is_404(client, db) -> None:
    mine = seed_offering(db, seed_course(db))
    other = seed_offering(db, seed_course(db, issuer="https://other.invalid"), code="OTHER")
    reply = client.get("/instructor/", headers=session_headers(mine.tokens["instructor"]),
                       query_string={"offering": other.offering_id})
    assert reply.status_code == 404


def test_course_without_offering(client, course) -> None:
    html = overview(client, course.tokens["instructor"])
    assert "No micro-credential is offered in this course yet." in html


def test_sync_health_in_plain_words_requests_and_badges(client, db) -> None:
    from datetime import timedelta

    from lti_tool.store.db import utcnow
    from lti_tool.store.models.evaluation import ReevaluationRequest
    from lti_tool.store.models.grades import SyncRun

    course = seed_offering(db, seed_course(db, learners=3), policy="instructor")
    seed_three(db, course)
    html = overview(client, course.tokens["instructor"])
    assert "The gradebook has not been synced yet." in html
    earlier = utcnow() - timedelta(hours=2)
    db.add(SyncRun(context_id=course.context_id, status="succeeded", started_at=earlier,
                   finished_at=earlier, items_seen=4, scores_seen=12, members_seen=5,
                   rows_written=7))
    db.add(SyncRun(context_id=course.context_id, status="failed", started_at=utcnow(),
                   finished_at=utcnow(), error="Moodle refused the web-service token."))
    from lti_tool.store.models.evaluation import Decision

    failed = db.query(Decision).filter_by(person_id=course.people["learner1"]).one()
    db.add(ReevaluationRequest(decision_id=failed.id, person_id=course.people["learner1"]))
    db.commit()
    html = overview(client, course.tokens["instructor"])
    assert "Moodle refused the web-service token." in html
    assert "4 items, 12 marks, 5 people; 7 changes saved." in html
    assert "<dt>Re-evaluation requests waiting</dt><dd>1</dd>" in html
    assert "Asked on" in html and "<dt>Badges issued</dt><dd>0" in html


def test_the_launched_link_picks_its_offering(client, db) -> None:
    """Two micro-credentials in one course: the placed link the instructor launched opens its
    own one (`custom.offering_id`), the other stays one choice away."""
    from lti_tool.store.models.core import ResourceLink
    from lti_tool.web.auth import start_session

    course = seed_offering(db, seed_course(db))
    first = course.offering_id
    second = seed_offering(db, course, code="SECOND").offering_id
    link = ResourceLink(context_id=course.context_id, resource_link_id="rl-2",
                        custom={"offering_id": str(second)})
    db.add(link)
    db.flush()
    token = start_session(db, platform_id=course.platform_id,
                          person_id=course.people["instructor"], context_id=course.context_id,
                          resource_link_id=link.id, role="instructor")
    db.commit()
    html = overview(client, token)
    assert "(SECOND)" in html and f'<option value="{first}">' in html
    assert "(DATA-101)" in overview(client, token, offering=first)


def test_the_overview_counts_add_up_and_every_status_is_filterable(client, db, settings) -> None:
    """Issue 12: with 5 learners the counts add up to 5 (in progress and re-evaluation open
    are counted and filterable), and "Badges issued" counts revoked credentials too."""
    import re

    from lti_tool.badges.issuance import issue_on_pass
    from lti_tool.store.db import utcnow
    from lti_tool.store.models.badges import Credential
    from lti_tool.store.models.catalogue import Offering

    course = seed_offering(db, seed_course(db, learners=5))
    seed_three(db, course)
    seed_decision(db, course, "learner4", [80, 60, None], status="in_progress")
    seed_decision(db, course, "learner5", [80, 60, None], status="reevaluation_granted",
                  reevaluations_used=1)
    version_id = db.get(Offering, course.offering_id).mc_version_id
    for key in ("learner2", "learner4", "learner5"):
        issue_on_pass(db, settings, person_id=course.people[key], mc_version_id=version_id,
                      offering_id=course.offering_id, outcome_levels={"LO1": "advanced"},
                      passed_at=utcnow())
    revoked = db.query(Credential).filter_by(person_id=course.people["learner4"]).one()
    revoked.status = "revoked"
    db.commit()
    token = course.tokens["instructor"]
    html = overview(client, token)
    counts = {name: int(n) for name, n in re.findall(r"<dt>([^<]+)</dt><dd>(\d+)", html)}
    parts = ["Not yet assessed", "In progress", "Re-evaluation open", "Passed", "Failed"]
    assert {k: counts[k] for k in parts} == {"Not yet assessed": 1, "In progress": 1,
                                             "Re-evaluation open": 1, "Passed": 1, "Failed": 1}
    assert sum(counts[k] for k in parts) == counts["Learners"] == 5
    assert "<dt>Badges issued</dt><dd>3 (1 revoked)</dd>" in html
    assert "Learner4 Example" in grid(overview(client, token, show="in_progress"))
    assert "Learner4 Example" not in grid(overview(client, token, show="reevaluation"))
    assert "Learner5 Example" in grid(overview(client, token, show="reevaluation"))
