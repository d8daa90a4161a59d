"""Moodle Web Services (REST, JSON): the whole gradebook, advanced-grading rubrics, competencies.

AGS only shows the tool's own line items; an embedded micro-credential needs the course's other
items, which only Moodle's own web services give. Moodle reports errors with HTTP 200 and an
`exception` object, and `core_grades_get_grade_tree` returns its tree as a JSON string inside
the JSON reply.

Moodle's exceptions are classified (`classify_exception`) so that the sync can tell a missing
permission or function (the admin must act) from "nothing to report" (a course whose
assignments use simple direct grading has no rubric definitions) and from a real failure.
Moodle's own message text is logged, never shown: pages get the function and what to do.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lti_tool.domain.lms import MOODLE_REST_ENDPOINT
from lti_tool.lms.http import LmsBadReply, LmsError, LmsHttp, LmsPermissionError, json_body

log = logging.getLogger(__name__)

ENDPOINT = MOODLE_REST_ENDPOINT

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

# The capabilities the token's user needs for each function (Moodle checks them in the
# function; the check command names them when a call is refused).
CAPABILITIES = {
    "gradereport_user_get_grade_items": ("gradereport/user:view", "moodle/grade:viewall"),
    "core_grades_get_gradeitems": ("moodle/grade:viewall",),
    "core_grades_get_grade_tree": ("moodle/grade:viewall",),
    "core_grading_get_definitions": ("moodle/grade:managegradingforms",),
    "core_grading_get_gradingform_instances": ("moodle/grade:managegradingforms",),
    "mod_assign_get_grades": ("mod/assign:grade",),
    "core_competency_list_course_competencies": ("moodle/competency:coursecompetencyview",),
}

ADMIN_PATH_FUNCTIONS = ("Site administration > Server > Web services > External services > "
                        "the tool's service > Functions > Add functions")
ADMIN_PATH_TOKENS = "Site administration > Server > Web services > Manage tokens"
ADMIN_PATH_ROLES = "Site administration > Users > Permissions > Define roles"

# Moodle's `errorcode`s, by what the administrator (or nobody) has to do about them.
_TOKEN_CODES = frozenset({
    "invalidtoken", "invalidtokensession", "servicerequireslogin", "usernotfullysetup",
    "restoredaccountresetpassword", "sitemaintenance", "invalidtimedtoken",
})
_FUNCTION_CODES = frozenset({"accessexception", "webservice_access_exception",
                             "servicenotavailable", "invalidrecord_function"})
_CAPABILITY_CODES = frozenset({"nopermissions", "requireloginerror",
                               "required_capability_exception", "notingroup", "coursehidden"})
# Replies that mean "there is nothing of this kind in this course", not a failure.
_NOTHING_CODES = frozenset({"invalid_method_name", "competenciesarenotenabled",
                            "nogradeitemfound", "nogradesfound"})


@dataclass(frozen=True)
class MoodleFault:
    """What a Moodle exception reply means for the person who has to act on it."""

    kind: str  # token | function | capability | nothing | failure
    function: str
    errorcode: str

    def advice(self) -> str:
        """A sentence a Moodle administrator can act on (never Moodle's own message text)."""
        if self.kind == "token":
            return (f"Moodle did not accept the tool's web-service token ({self.errorcode}). "
                    f"Create a token for the tool's service in {ADMIN_PATH_TOKENS} and store it "
                    "with `lti-tool platform rest-token`.")
        if self.kind == "function":
            return (f"Moodle's web service does not offer {self.function} to the tool. Add it in "
                    f"{ADMIN_PATH_FUNCTIONS}.")
        if self.kind == "capability":
            caps = ", ".join(CAPABILITIES.get(self.function, ())) or "the capability it checks"
            return (f"The token's user may not call {self.function} in this course: give the "
                    f"user's role {caps} ({ADMIN_PATH_ROLES}).")
        if self.kind == "nothing":
            return f"Moodle's {self.function} had nothing to report for this course."
        return f"Moodle's {self.function} failed ({self.errorcode or 'no error code'})."


def classify_exception(function: str, body: dict) -> MoodleFault:
    """Classify a Moodle `{"exception": …, "errorcode": …}` reply (HTTP 200)."""
    code = str(body.get("errorcode") or "")
    if code in _TOKEN_CODES:
        kind = "token"
    elif code in _FUNCTION_CODES:
        kind = "function"
    elif code in _CAPABILITY_CODES:
        kind = "capability"
    elif code in _NOTHING_CODES:
        kind = "nothing"
    else:
        kind = "failure"
    return MoodleFault(kind, function, code[:100])


class MoodleNothingToReport(LmsError):
    """Moodle answered with an exception that means "nothing of this kind here"."""

    code = "moodle_nothing"


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
            fault = classify_exception(function, body)
            log.warning("Moodle %s answered %s: %s", function, fault.errorcode,
                        str(body.get("message") or "")[:300])
            details = {"function": function, "errorcode": fault.errorcode, "kind": fault.kind}
            if fault.kind in ("token", "function", "capability"):
                raise LmsPermissionError(fault.advice(), details=details)
            if fault.kind == "nothing":
                raise MoodleNothingToReport(fault.advice(), details=details)
            raise LmsError(fault.advice(), details=details)
        return body

    def _dict_reply(self, function: str, key: str, **params: Any) -> list:
        body = self.call(function, **params)
        if not isinstance(body, dict) or not isinstance(body.get(key, []), list):
            raise LmsBadReply(f"Moodle's {function} reply has no {key} list.")
        return body.get(key, [])

    def site_functions(self) -> set[str]:
        """The functions the token's service offers. A reply that is not Moodle's site info
        is an LmsBadReply, never "no function offered" (which would send an administrator
        to add functions that may be there)."""
        body = self.call("core_webservice_get_site_info")
        functions = body.get("functions") if isinstance(body, dict) else None
        if not isinstance(functions, list):
            raise LmsBadReply("Moodle's core_webservice_get_site_info reply is not Moodle's "
                              "site information (it has no list of functions); check that "
                              "the web-service URL is the site's /webservice/rest/server.php.")
        return {f["name"] for f in functions
                if isinstance(f, dict) and isinstance(f.get("name"), str)}

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
        """`core_grading_get_definitions`: advanced-grading (rubric) definitions per activity.

        Asked with `activeonly=0`: with `activeonly=1` Moodle answers an exception
        (`invalid_method_name`) for any activity that uses simple direct grading, which is most
        of them. Each area names its `activemethod`; callers keep only the active definitions.
        """
        ids = sorted(set(cmids))
        if not ids:
            return []
        return self._dict_reply("core_grading_get_definitions", "areas", cmids=ids,
                                areaname=area, activeonly=False)

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
