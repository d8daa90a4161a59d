"""The evaluation pages: authorization, scoping, preview without writes, clear 4xx and 409."""

from __future__ import annotations

from sqlalchemy import func, select

from lti_tool.grades import evaluation as ev
from lti_tool.store.models.core import Person
from lti_tool.store.models.evaluation import Decision, EvidenceRecord, OutcomeMapping
from lti_tool.web.auth import CSRF_HEADER, SESSION_HEADER, csrf_token, start_session
from tests.evaluation.conftest import Course, seed_course


def login(app, db, course: Course, person: Person, role: str) -> dict:
    token = start_session(db, platform_id=person.platform_id, person_id=person.id,
                          context_id=course.context.id, resource_link_id=None, role=role)
    db.commit()
    headers = {SESSION_HEADER: token, "Accept": "application/json"}
    with app.test_request_context(headers={SESSION_HEADER: token}):
        app.preprocess_request()
        headers[CSRF_HEADER] = csrf_token()
    return headers


def base(course: Course) -> str:
    return f"/instructor/offerings/{course.offering.id}"


def mapping_json(course: Course) -> dict:
    return {"outcomes": {code: [{"kind": s.kind, "ref": s.ref, "weight": str(s.weight)}
                                for s in specs] for code, specs in course.mapping().items()}}


def test_no_session_is_401_and_learner_is_403(app, client, db) -> None:
    course = seed_course(db)
    db.commit()
    assert client.get(base(course) + "/mapping").status_code == 401
    learner = login(app, db, course, course.learners[0], "learner")
    for method, path in (("get", "/mapping"), ("post", "/mapping/preview"), ("post", "/mapping"),
                         ("get", "/scores"), ("post", "/finalize"), ("post", "/reevaluation")):
        assert getattr(client, method)(base(course) + path, headers=learner).status_code == 403
    teacher = login(app, db, course, course.instructor, "instructor")
    reply = client.post(f"/learner/offerings/{course.offering.id}/reevaluation-request",
                        headers=teacher)
    assert reply.status_code == 403


def test_other_platform_or_context_ids_are_404(app, client, db) -> None:
    mine = seed_course(db)
    other = seed_course(db, issuer="https://other.example.edu")
    db.commit()
    teacher = login(app, db, mine, mine.instructor, "instructor")
    assert client.get(base(other) + "/mapping", headers=teacher).status_code == 404
    reply = client.post(base(mine) + "/reevaluation", headers=teacher,
                        data={"person_id": other.learners[0].id})
    assert reply.status_code == 404
    reply = client.get(f"{base(mine)}/learners/{other.learners[0].id}/evidence.json",
                       headers=teacher)
    assert reply.status_code == 404
    learner = login(app, db, mine, mine.learners[0], "learner")
    reply = client.post(f"/learner/offerings/{other.offering.id}/reevaluation-request",
                        headers=learner)
    assert reply.status_code == 404


def test_mapping_page_preview_and_save(app, client, db) -> None:
    course = seed_course(db)
    course.mark(course.learners[0], "quiz1", "7")
    course.mark(course.learners[0], "quiz2", "14")
    db.commit()
    teacher = login(app, db, course, course.instructor, "instructor")
    page = client.get(base(course) + "/mapping", headers={**teacher, "Accept": "text/html"})
    assert page.status_code == 200 and "LO1" in page.get_data(as_text=True)
    reply = client.post(base(course) + "/mapping/preview", headers=teacher,
                        json=mapping_json(course))
    assert reply.status_code == 200
    row = next(r for r in reply.get_json()["learners"] if r["person_id"] ==
               course.learners[0].id)
    assert row["outcomes"]["LO1"]["level"] == "proficient"
    assert db.scalar(select(func.count(Decision.id))) == 0  # the preview wrote nothing
    form = {f"w|{code}|{s.kind}|{s.ref}": str(s.weight)
            for code, specs in course.mapping().items() for s in specs}
    html = client.post(base(course) + "/mapping/preview",
                       headers={**teacher, "Accept": "text/html"}, data=form)
    assert html.status_code == 200 and "preview-body" in html.get_data(as_text=True)
    saved = client.post(base(course) + "/mapping", headers=teacher, json=mapping_json(course))
    assert saved.status_code == 200
    db.expire_all()
    assert db.scalar(select(OutcomeMapping.version)) == 1
    assert db.scalar(select(func.count(Decision.id))) == 3


def test_bad_input_is_a_clear_4xx_without_writes(app, client, db) -> None:
    course = seed_course(db)
    db.commit()
    teacher = login(app, db, course, course.instructor, "instructor")
    for body in ({"outcomes": {"LO1": [{"kind": "grade_item", "ref": "1", "weight": "x"}]}},
                 {"outcomes": {"LO1": [{"kind": "nope", "ref": "1", "weight": "1"}]}},
                 {"outcomes": {"LO1": "all"}}, {"nothing": 1},
                 {"outcomes": {"LO9": []}, "attempt": 1}, {"outcomes": {}, "attempt": 7}):
        reply = client.post(base(course) + "/mapping", headers=teacher, json=body)
        assert reply.status_code == 400, body
        assert reply.get_json()["message"]
    reply = client.post(base(course) + "/scores", headers=teacher,
                        data={"person_id": course.learners[0].id, "outcome_code": "LO1",
                              "level": "genius"})
    assert reply.status_code == 400 and "genius" in reply.get_json()["message"]
    reply = client.post(base(course) + "/reevaluation", headers=teacher,
                        data={"person_id": "abc"})
    assert reply.status_code == 400
    db.expire_all()
    assert db.scalar(select(func.count(OutcomeMapping.id))) == 0
    assert db.scalar(select(func.count(EvidenceRecord.id))) == 0


def test_decisions_through_the_pages_with_409_for_illegal_steps(app, client, db,
                                                                settings) -> None:
    course = seed_course(db, policy="instructor")
    ev.save_mapping(db, settings, course.offering.id, course.mapping(), course.by)
    db.commit()
    teacher = login(app, db, course, course.instructor, "instructor")
    learner_id = course.learners[0].id
    early = client.post(base(course) + "/reevaluation", headers=teacher,
                        data={"person_id": learner_id})
    assert early.status_code == 409 and "still open" in early.get_json()["message"]
    assert client.post(base(course) + "/finalize", headers=teacher).status_code == 200
    assert client.post(base(course) + "/finalize", headers=teacher).status_code == 409
    learner = login(app, db, course, course.learners[0], "learner")
    asked = client.post(f"/learner/offerings/{course.offering.id}/reevaluation-request",
                        headers=learner, data={"reason": "ill"})
    assert asked.status_code == 200 and "instructor" in asked.get_json()["message"]
    granted = client.post(base(course) + "/reevaluation", headers=teacher,
                          data={"person_id": learner_id, "closes_at": "2099-01-31"})
    assert granted.status_code == 200
    again = client.post(base(course) + "/reevaluation", headers=teacher,
                        data={"person_id": learner_id})
    assert again.status_code == 409 and "one re-evaluation" in again.get_json()["message"]
    scored = client.post(base(course) + "/scores", headers=teacher,
                         data={"person_id": learner_id, "outcome_code": "LO3",
                               "level": "exemplary", "comment": "much better"})
    assert scored.status_code == 200
    page = client.get(base(course) + "/scores", headers={**teacher, "Accept": "text/html"})
    assert page.status_code == 200 and "much better" in page.get_data(as_text=True)
    mine = client.get(f"/learner/offerings/{course.offering.id}/evidence.json",
                      headers=learner)
    data = mine.get_json()
    assert data["person"]["id"] == learner_id and data["chain"]["verified"] is True
    assert [r["event"] for r in data["records"]] == ["failed", "reevaluation_granted"]
    rpl = client.post(base(course) + "/prior-learning", headers=teacher,
                      data={"person_id": course.learners[1].id, "evidence|LO1": "cert",
                            "evidence|LO2": "job", "evidence|LO3": "portfolio"})
    assert rpl.status_code == 200  # prior learning is a way to pass from `failed` too
    db.expire_all()
    assert db.scalar(select(Decision.status).where(
        Decision.person_id == course.learners[1].id)) == "passed"


def test_rubric_and_levels_shown_on_scoring_page_for_each_learner(app, client, db) -> None:
    course = seed_course(db, learners=2)
    db.commit()
    teacher = login(app, db, course, course.instructor, "instructor")
    page = client.get(base(course) + f"/scores?person_id={course.learners[1].id}",
                      headers={**teacher, "Accept": "text/html"})
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Student 1" in text and "Student 0" not in text
