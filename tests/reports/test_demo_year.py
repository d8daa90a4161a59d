"""`lti-tool demo` seeds last calendar year, so the Office's report page (which opens on last
year) shows real figures at once; its credentials are signed and verify, dated in that year."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from lti_tool.badges.verify import Verifier
from lti_tool.demo_seed import SeedContext, practice_course, run_tool_seed
from lti_tool.reports.render import render_json
from lti_tool.reports.service import build_report
from lti_tool.store.db import utcnow
from lti_tool.store.models.badges import Credential
from lti_tool.store.models.reports import StakeholderFeedback, SurveyResponse
from lti_tool.store.sessions import start_session
from tests.conftest import session_headers


def test_the_demo_seeds_last_year_for_the_report(app, db, settings) -> None:
    ctx = SeedContext(db=db, settings=settings, course=practice_course(),
                      lms_url="http://127.0.0.1:8001")
    run_tool_seed(ctx)
    run_tool_seed(ctx)  # a restart runs the steps again: nothing is doubled
    db.commit()
    assert db.scalar(select(func.count()).select_from(SurveyResponse)) == 9
    assert db.scalar(select(func.count()).select_from(StakeholderFeedback)) == 6
    year = utcnow().year - 1
    report = json.loads(render_json(build_report(
        db, settings, institution_id=ctx.platform.institution_id, year=year)))
    overall = report["overall"]
    assert report["institution"] == "Example University"
    assert overall["participation"]["enrolled"] == 12
    assert overall["success"]["passed"] == 8 and overall["success"]["failed"] == 3
    assert overall["success"]["passed_after_reevaluation"] == 1
    assert overall["credentials"] == {"issued": 8, "accepted": 6, "shared": 2, "revoked": 0,
                                      "acceptance_rate": 0.75}
    assert overall["satisfaction"]["responses"] == 9  # shown: at least 5 answers
    assert overall["satisfaction"]["items"]["q4"]["n"] == 9
    assert overall["employability"]["answered"] == 6
    assert overall["employability"]["used_rate"] == round(5 / 6, 4)
    assert overall["stakeholders"]["n"] == 6
    assert len(report["comments"]["per_mc"]["DLE-101"]) == 3
    assert report["reflections"]["DLE-101"][0]["worked"].startswith("Weekly data clinics")
    assert [a["status"] for a in report["actions"]] == ["done", "in_progress"]
    # The past year's credentials are real: signed, dated in that year, and they verify.
    past = db.scalars(select(Credential).where(Credential.issued_at < utcnow().replace(
        month=1, day=1, hour=0, minute=0, second=0, microsecond=0))).all()
    assert len(past) == 8
    document = json.loads(past[0].document)
    assert document["validFrom"].startswith(str(year))
    assert Verifier(db, settings).verify_bytes(past[0].jwt.encode()).valid
    # The Office's report page opens on last year and shows the figures.
    office = start_session(db, platform_id=ctx.platform.id, person_id=past[0].person_id,
                           context_id=None, resource_link_id=None, role="admin")
    db.commit()
    page = app.test_client().get("/admin/report", headers=session_headers(office))
    assert page.status_code == 200
    text = page.get_data(True)
    assert str(year) in text and "Data Literacy" in text
    assert text.count("fewer than 5") == 2  # only in the page's explanation: nothing withheld
    assert "More worked examples with real engineering data" in text
