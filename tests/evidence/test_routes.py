"""`/learner/my-data.json`: a learner downloads all their own data, and nobody else's."""

from __future__ import annotations

import json

from lti_tool.grades.evidence import append_evidence
from lti_tool.store.models.core import Person
from testkit.seed import seed_story


def test_a_learner_downloads_their_own_data_only(app, db, settings) -> None:
    course = seed_story(db, settings)
    learner, classmate = course.people["learner2"], course.people["learner1"]
    append_evidence(db, platform_id=course.platform_id, event="passed",
                    payload={"person_id": learner}, person_id=learner)
    append_evidence(db, platform_id=course.platform_id, event="failed",
                    payload={"person_id": classmate}, person_id=classmate)
    db.commit()
    client = app.test_client()
    reply = client.get("/learner/my-data.json",
                       headers={"X-LTI-Tool-Session": course.tokens["learner2"]})
    assert reply.status_code == 200
    assert reply.headers["Content-Disposition"].startswith("attachment")
    assert reply.headers["Cache-Control"] == "no-store"
    data = json.loads(reply.get_data(as_text=True))
    assert data["person"]["id"] == learner
    assert [d["status"] for d in data["decisions"]] == ["passed"]
    assert len(data["credentials"]) == 1 and data["credentials"][0]["document"]["proof"]
    assert data["courses"] and data["courses"][0]["role"] == "learner"
    assert [r["event"] for r in data["evidence"]["records"]] == ["passed"]
    assert data["evidence"]["chain"]["verified"] is True
    assert set(data["kept_because"]) >= {"decisions", "evidence_records", "credentials"}
    assert data["retention_days"]["evidence_payloads"] == settings.retention_evidence_days
    text = reply.get_data(as_text=True)
    assert db.get(Person, classmate).sub not in text
    for who, status in (("instructor", 403), ("admin", 403)):
        other = client.get("/learner/my-data.json",
                           headers={"X-LTI-Tool-Session": course.tokens[who]})
        assert other.status_code == status
    assert client.get("/learner/my-data.json").status_code == 401


def test_the_learner_page_links_to_the_download(app, db, settings) -> None:
    course = seed_story(db, settings)
    page = app.test_client().get("/learner/", headers={
        "X-LTI-Tool-Session": course.tokens["learner1"]}).get_data(as_text=True)
    assert "/learner/my-data.json" in page and "Download all my data (JSON)" in page
