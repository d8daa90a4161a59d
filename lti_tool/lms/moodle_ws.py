"""Moodle Web Services (REST, JSON): the whole gradebook, advanced-grading rubrics, competencies.

AGS only shows the tool's own line items; an embedded micro-credential needs the course's other
items, which only Moodle's own web services give. Moodle reports errors with HTTP 200 and an
`exception` object, and `core_grades_get_grade_tree` returns its tree as a JSON string inside
the JSON reply.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from lti_tool.lms.http import LmsBadReply, LmsError, LmsHttp, LmsPermissionError, json_body

log = logging.getLogger(__name__)

ENDPOINT = "/webservice/rest/server.php"

# What the web-service token's service must include (the README lists them for admins).
REQUIRED_FUNCTIONS = (
    "core_webservice_get_site_info",
    "gradereport_user_get_grade_items",
    "core_grades_get_gradeitems",
    "core_grades_get_grade_tree",
    "core_grading_get_definitions",
    "core_grading_get_gradingform_instances",
    "mod_assign_get_grades",
    "core_competency_list_course_competencies",
)

_PERMISSION_CODES = {
    "accessexception", "invalidtoken", "nopermissions", "requireloginerror",
    "webservice_access_exception", "servicerequireslogin", "invalidtokensession",
    "sitemaintenance", "usernotfullysetup", "restoredaccountresetpassword",
}


def flatten_params(params: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Moodle's REST encoding: lists become `name[0]=…`, dicts `name[key]=…`, bools 0/1."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, dict):
            pairs += flatten_params(value, name)
        elif isinstance(value, list | tuple):
            pairs += flatten_params({str(i): v for i, v in enumerate(value)}, name)
        elif isinstance(value, bool):
            pairs.append((name, "1" if value else "0"))
        elif value is not None:
            pairs.append((name, str(value)))
    return pairs


class MoodleWs:
    """A Moodle site's REST web service, called with the platform's web-service token."""

    def __init__(self, http: LmsHttp, base_url: str, token: str) -> None:
        self.http = http
        # The site URL, or the full endpoint URL as config/platforms/moodle.toml shows it.
        base = base_url.rstrip("/")
        self.url = base if base.endswith(ENDPOINT) else base + ENDPOINT
        self.token = token

    def call(self, function: str, **params: Any) -> Any:
        """Call one function; Moodle's `exception` replies become LmsError with its message."""
        form = [("wstoken", self.token), ("wsfunction", function),
                ("moodlewsrestformat", "json"), *flatten_params(params)]
        response = self.http.post(self.url, data=form, idempotent=True,
                                  needed=f"the web-service function {function}")
        body = json_body(response, f"Moodle's {function}")
        if isinstance(body, dict) and "exception" in body:
            code = str(body.get("errorcode") or "")[:100]
            log.warning("Moodle's %s failed: %s: %s", function, code,
                        str(body.get("message") or "")[:500])
            if code in _PERMISSION_CODES:
                raise LmsPermissionError(
                    f"Moodle refused {function} ({code}). Add {function} to the tool's "
                    "external service and give the token's user the capability it needs.",
                    details={"function": function, "errorcode": code},
                )
            raise LmsError(f"Moodle's {function} failed ({code or 'no error code'}); the "
                           "tool's log has Moodle's message.",
                           details={"function": function, "errorcode": code})
        return body

    def _dict_reply(self, function: str, key: str, **params: Any) -> list:
        body = self.call(function, **params)
        if not isinstance(body, dict) or not isinstance(body.get(key, []), list):
            raise LmsBadReply(f"Moodle's {function} reply has no {key} list.")
        return body.get(key, [])

    def site_functions(self) -> set[str]:
        body = self.call("core_webservice_get_site_info")
        functions = body.get("functions", []) if isinstance(body, dict) else []
        return {f["name"] for f in functions if isinstance(f, dict) and "name" in f}

    def user_grade_items(self, course_id: str, user_id: int | None = None) -> list[dict]:
        """`gradereport_user_get_grade_items`: every item with each learner's grade."""
        params: dict[str, Any] = {"courseid": course_id}
        if user_id is not None:
            params["userid"] = user_id
        return self._dict_reply("gradereport_user_get_grade_items", "usergrades", **params)

    def grade_items(self, course_id: str) -> list[dict]:
        """`core_grades_get_gradeitems`: id, name and category of every item."""
        return self._dict_reply("core_grades_get_gradeitems", "gradeItems", courseid=course_id)

    def grade_tree(self, course_id: str) -> dict:
        """`core_grades_get_grade_tree`, decoded twice (the tree is a JSON string in JSON)."""
        body = self.call("core_grades_get_grade_tree", courseid=course_id)
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError as exc:
                raise LmsBadReply("Moodle's grade tree is not valid JSON.") from exc
        if not isinstance(body, dict):
            raise LmsBadReply("Moodle's grade tree is not an object.")
        return body

    def grading_definitions(self, cmids: Iterable[int], area: str = "submissions") -> list[dict]:
        """`core_grading_get_definitions`: advanced-grading (rubric) definitions per activity."""
        ids = sorted(set(cmids))
        if not ids:
            return []
        return self._dict_reply("core_grading_get_definitions", "areas", cmids=ids,
                                areaname=area, activeonly=True)

    def gradingform_instances(self, definition_id: int, since: int = 0) -> list[dict]:
        """`core_grading_get_gradingform_instances`: filled rubrics changed since `since`."""
        return self._dict_reply("core_grading_get_gradingform_instances", "instances",
                                definitionid=definition_id, since=since)

    def assign_grades(self, assignment_ids: Iterable[int], since: int = 0) -> list[dict]:
        """`mod_assign_get_grades`: links a rubric instance's `itemid` to a learner."""
        ids = sorted(set(assignment_ids))
        if not ids:
            return []
        return self._dict_reply("mod_assign_get_grades", "assignments", assignmentids=ids,
                                since=since)

    def course_competencies(self, course_id: str) -> list[dict]:
        """`core_competency_list_course_competencies` (a bare JSON list)."""
        body = self.call("core_competency_list_course_competencies", id=course_id)
        if not isinstance(body, list):
            raise LmsBadReply("Moodle's course competencies reply is not a list.")
        return body
