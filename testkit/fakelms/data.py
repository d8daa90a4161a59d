"""Course data for the fake LMS, built from the captured Moodle messages.

Every record starts as a copy of a real reply from `../shared/fixtures/moodle/` (or, for
Canvas REST, which cannot be captured here, the shapes in Canvas's API documentation) with
only ids, names and marks changed, so the tool is tested against the real field layout.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[3] / "shared"
if not SHARED.is_dir():
    SHARED = Path(__file__).resolve().parents[2].parent / "shared"
MOODLE = SHARED / "fixtures" / "moodle"


def load_fixture(*parts: str) -> Any:
    """A captured message of `../shared/fixtures/` (e.g. "moodle", "id_token_….json")."""
    return json.loads((SHARED / "fixtures").joinpath(*parts).read_text())


def moodle_fixture(name: str) -> Any:
    return json.loads((MOODLE / name).read_text())


# The AGS scopes Moodle grants the tool (the captured launch).
GRANTED_AGS = moodle_fixture("ags_instructor_lineitems_exchanges.json")["ags_claim"]["scope"]


@dataclass
class LineItem:
    """A line item as Moodle stores it; `extra` keeps the fixture's other keys."""

    id: int
    label: str
    score_maximum: float
    resource_id: str = ""
    tag: str = ""
    resource_link_id: str | None = None

    def as_json(self, url: str) -> dict:
        body: dict[str, Any] = {"id": url, "label": self.label, "scoreMaximum": self.score_maximum,
                                "resourceId": self.resource_id, "tag": self.tag}
        if self.resource_link_id is not None:
            body["resourceLinkId"] = self.resource_link_id
            body["ltiLinkId"] = self.resource_link_id
        return body


@dataclass
class Result:
    score: float | None
    maximum: float
    timestamp: str
    comment: str = ""


@dataclass
class CourseData:
    """Everything the fake LMS serves for its one course."""

    course_id: str = "2"
    members: list[dict] = field(default_factory=list)
    line_items: list[LineItem] = field(default_factory=list)
    results: dict[int, dict[str, Result]] = field(default_factory=dict)
    # Moodle web services: function name -> reply (or a callable(params) -> reply)
    ws_replies: dict[str, Any] = field(default_factory=dict)
    # Canvas REST
    canvas_users: list[dict] = field(default_factory=list)
    canvas_assignments: list[dict] = field(default_factory=list)
    canvas_submissions: list[dict] = field(default_factory=list)
    canvas_outcome_results: list[dict] = field(default_factory=list)
    canvas_outcomes: list[dict] = field(default_factory=list)

    def remove_member(self, user_id: str) -> None:
        self.members = [m for m in self.members if m["user_id"] != user_id]


def _ws_response(name: str) -> Any:
    return copy.deepcopy(moodle_fixture(f"ws_{name}.json")["response"])


def moodle_course() -> CourseData:
    """The captured LTI101 course: 3 students and a teacher, 4 AGS items, 8 gradebook items."""
    nrps = moodle_fixture("nrps_membership.json")["nrps"]["body"]
    ags = moodle_fixture("ags_instructor_lineitems_exchanges.json")["lineitems"]["body"]
    scored = moodle_fixture("ags_student_score_and_results.json")["results"]["body"]
    data = CourseData(course_id=nrps["context"]["id"], members=copy.deepcopy(nrps["members"]))
    for entry in ags:
        item_id = int(entry["id"].split("/lineitems/")[1].split("/")[0])
        data.line_items.append(LineItem(
            id=item_id, label=entry["label"], score_maximum=entry["scoreMaximum"],
            resource_id=entry.get("resourceId", ""), tag=entry.get("tag", ""),
            resource_link_id=entry.get("resourceLinkId")))
    for result in scored:
        item_id = int(result["scoreOf"].split("/lineitems/")[1].split("/")[0])
        data.results.setdefault(item_id, {})[result["userId"]] = Result(
            result["resultScore"], result["resultMaximum"], result["timestamp"],
            result.get("comment", ""))
    for name in ("gradereport_user_get_grade_items", "core_grades_get_gradeitems",
                 "core_grades_get_grade_tree",
                 "core_competency_list_course_competencies", "core_webservice_get_site_info",
                 "mod_assign_get_grades"):
        data.ws_replies[name] = _ws_response(name)
    # Both assignments of the captured course use simple direct grading: the activeonly=0 reply
    # lists their areas with activemethod null (the fake answers activeonly=1 as Moodle does).
    data.ws_replies["core_grading_get_definitions"] = copy.deepcopy(moodle_fixture(
        "ws_core_grading_get_definitions_activeonly.json")["activeonly_0"]["response"])
    data.ws_replies["core_grading_get_gradingform_instances"] = {"instances": [],
                                                                 "warnings": []}
    return data


def generated_course(learners: int, items: int, *, seed: int = 7) -> CourseData:
    """A large course in the captured shapes: `learners` students, `items` AGS line items."""
    rng = random.Random(seed)
    nrps = moodle_fixture("nrps_membership.json")["nrps"]["body"]
    student, teacher = nrps["members"][0], nrps["members"][3]
    data = CourseData(course_id=nrps["context"]["id"])
    data.members.append(copy.deepcopy(teacher))
    for n in range(learners):
        uid = str(1000 + n)
        data.members.append(dict(copy.deepcopy(student), user_id=uid, name=f"Learner {n}",
                                 given_name="Learner", family_name=str(n),
                                 email=f"learner{n}@example.com",
                                 ext_user_username=f"learner{n}"))
    for i in range(items):
        item_id = 100 + i
        data.line_items.append(LineItem(id=item_id, label=f"Assessment {i + 1}",
                                        score_maximum=100, resource_id=f"res-{i}",
                                        tag="bench"))
        data.results[item_id] = {
            str(1000 + n): Result(float(rng.randint(0, 100)), 100,
                                  "2026-11-22T17:55:04+00:00", "")
            for n in range(learners)
        }
    return data


def add_moodle_rubric(data: CourseData, *, cmid: int, assignment_id: int,
                      fills: dict[str, dict[int, int]]) -> None:
    """Give assignment `cmid` a rubric (2 criteria, 3 levels) filled for learners in `fills`.

    Shapes follow Moodle's external API (`core_grading_get_definitions`,
    `core_grading_get_gradingform_instances`, `mod_assign_get_grades`); the captured course had
    no rubric, so only these three replies are assembled here. `fills`: user id -> {criterion
    id: level id}.
    """
    criteria = [
        {"id": 11, "sortorder": 1, "description": "Argument", "descriptionformat": 1,
         "levels": [{"id": 111, "score": 0, "definition": "Missing", "definitionformat": 1},
                    {"id": 112, "score": 5, "definition": "Partial", "definitionformat": 1},
                    {"id": 113, "score": 10, "definition": "Convincing", "definitionformat": 1}]},
        {"id": 12, "sortorder": 2, "description": "Sources", "descriptionformat": 1,
         "levels": [{"id": 121, "score": 0, "definition": "None", "definitionformat": 1},
                    {"id": 122, "score": 2, "definition": "Some", "definitionformat": 1},
                    {"id": 123, "score": 4, "definition": "Well cited", "definitionformat": 1}]},
    ]
    definitions = data.ws_replies["core_grading_get_definitions"]
    area = definitions["areas"][0]
    area.update(cmid=cmid, activemethod="rubric")
    area["definitions"] = [{
        "id": 1, "method": "rubric", "name": "Essay rubric", "description": "",
        "descriptionformat": 1, "status": 20, "copiedfromid": None, "timecreated": 1795370000,
        "usercreated": 3, "timemodified": 1795370000, "usermodified": 3, "timecopied": 0,
        "rubric": {"rubric_criteria": criteria},
    }]
    grades, instances = [], []
    for n, (user_id, chosen) in enumerate(sorted(fills.items())):
        grade_id = 500 + n
        grades.append({"id": grade_id, "assignment": assignment_id, "userid": int(user_id),
                       "attemptnumber": 0, "timecreated": 1795370000,
                       "timemodified": 1795370000, "grader": 3, "grade": "78.00000"})
        instances.append({
            "id": 900 + n, "raterid": 3, "itemid": grade_id, "rawgrade": "10.00000",
            "status": 1, "feedback": "", "feedbackformat": 1, "timemodified": 1795370000,
            "rubric": {"criteria": [
                {"id": 9000 + 10 * n + k, "criterionid": crit, "levelid": level,
                 "remark": "", "remarkformat": 0}
                for k, (crit, level) in enumerate(sorted(chosen.items()))]},
        })
    data.ws_replies["mod_assign_get_grades"] = {
        "assignments": [{"assignmentid": assignment_id, "grades": grades}], "warnings": []}
    data.ws_replies["core_grading_get_gradingform_instances"] = {"instances": instances,
                                                                 "warnings": []}


def canvas_course(course_id: str = "311") -> CourseData:
    """A Canvas course: users (with `lti_id`), two assignments (one with a rubric),
    submissions with rubric assessments, and an Outcomes result; Canvas API doc shapes."""
    data = CourseData(course_id=course_id)
    people = [("5012", "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f", "Ayşe Yılmaz", "Learner"),
              ("5013", "d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f60", "Mehmet Kaya", "Learner"),
              ("5001", "a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d", "Deniz Öğretmen", "Instructor")]
    for canvas_id, lti_id, name, role in people:
        data.canvas_users.append({"id": int(canvas_id), "name": name, "sortable_name": name,
                                  "short_name": name, "login_id": name.split()[0].lower(),
                                  "lti_id": lti_id, "uuid": f"uuid-{canvas_id}",
                                  "enrollments": [{"type": f"{role}Enrollment"}]})
        data.members.append({"status": "Active", "name": name, "user_id": lti_id,
                             "roles": [f"http://purl.imsglobal.org/vocab/lis/v2/membership#{role}"]})
    rubric = [{"id": "_4021", "points": 5.0, "description": "Data cleaning", "long_description": "",
               "ratings": [{"id": "r_1", "points": 5.0, "description": "Full marks"},
                           {"id": "r_2", "points": 3.0, "description": "Partial"},
                           {"id": "r_3", "points": 0.0, "description": "No marks"}]}]
    data.canvas_assignments = [
        {"id": 101, "name": "Data cleaning project", "points_possible": 10.0, "course_id": 311,
         "updated_at": "2026-11-20T10:00:00Z", "published": True, "rubric": rubric,
         "rubric_settings": {"id": 88, "title": "Project rubric", "points_possible": 5.0}},
        {"id": 102, "name": "Quiz 1", "points_possible": 20.0, "course_id": 311,
         "updated_at": "2026-11-20T10:00:00Z", "published": True},
    ]
    data.canvas_submissions = [
        {"id": 1, "assignment_id": 101, "user_id": 5012, "score": 8.0, "grade": "8",
         "graded_at": "2026-11-21T09:00:00Z", "workflow_state": "graded",
         "rubric_assessment": {"_4021": {"rating_id": "r_2", "comments": "", "points": 3.0}}},
        {"id": 2, "assignment_id": 102, "user_id": 5012, "score": 17.0, "grade": "17",
         "graded_at": "2026-11-21T09:05:00Z", "workflow_state": "graded"},
        {"id": 3, "assignment_id": 101, "user_id": 5013, "score": None, "grade": None,
         "graded_at": None, "workflow_state": "unsubmitted"},
    ]
    data.canvas_outcomes = [{"id": 7, "title": "Interprets data", "points_possible": 5.0,
                             "mastery_points": 3.0}]
    data.canvas_outcome_results = [
        {"id": 1, "score": 4.0, "possible": 5.0, "mastery": True,
         "submitted_or_assessed_at": "2026-11-21T09:00:00Z",
         "links": {"user": "5012", "learning_outcome": "7", "alignment": "assignment_101"}}]
    return data
