"""Moodle Web Services against the captured replies."""

from __future__ import annotations

import pytest

from lti_tool.lms.http import LmsPermissionError
from lti_tool.lms.moodle_ws import (
    REQUIRED_FUNCTIONS,
    MoodleNothingToReport,
    MoodleWs,
    classify_exception,
    flatten_params,
)
from tests.conftest import load_fixture


def _ws(services) -> MoodleWs:
    return MoodleWs(services.http, services.fake.base_url, services.fake.ws_token)


def test_grade_tree_is_json_inside_a_json_string(moodle) -> None:
    assert isinstance(load_fixture("moodle", "ws_core_grades_get_grade_tree.json")["response"],
                      str)
    tree = _ws(moodle).grade_tree("2")
    assert tree["iscategory"] is True and tree["name"] == "LTI Test Course 101"
    assert [c["name"] for c in tree["children"]][:3] == [
        "Essay 1", "Quiz-like Assignment 2", "Participation (manual)"]


def test_user_grade_items_and_gradeitems(moodle) -> None:
    ws = _ws(moodle)
    users = ws.user_grade_items("2")
    assert [u["userid"] for u in users] == [4, 5, 6]
    essay = users[0]["gradeitems"][0]
    assert (essay["itemname"], essay["graderaw"], essay["grademax"]) == ("Essay 1", 78, 100)
    assert ws.grade_items("2")[3] == {"id": "5", "itemname": "Breakout (LTI 1.3)",
                                      "category": "LTI Test Course 101"}
    assert ws.course_competencies("2") == []
    assert ws.grading_definitions([1])[0]["definitions"] == []


def test_request_is_moodles_rest_encoding(moodle) -> None:
    _ws(moodle).grading_definitions([3, 1])
    assert flatten_params({"cmids": [1, 3], "areaname": "submissions", "activeonly": True}) == [
        ("cmids[0]", "1"), ("cmids[1]", "3"), ("areaname", "submissions"), ("activeonly", "1")]
    assert moodle.fake.count("/webservice/rest/server.php", "POST") == 1


def test_grading_definitions_of_simple_direct_grading(moodle) -> None:
    """Moodle 5.1 answers activeonly=1 with an exception for simply graded assignments (the
    capture); the tool asks with activeonly=0 and gets the areas with activemethod null."""
    capture = load_fixture("moodle", "ws_core_grading_get_definitions_activeonly.json")
    areas = _ws(moodle).grading_definitions([1, 2])
    assert areas == capture["activeonly_0"]["response"]["areas"]
    # The fake answers activeonly=1 exactly as the capture shows, and the tool classifies it.
    with pytest.raises(MoodleNothingToReport) as caught:
        _ws(moodle).call("core_grading_get_definitions", cmids=[1, 2],
                         areaname="submissions", activeonly=True)
    assert caught.value.details == {"function": "core_grading_get_definitions",
                                    "errorcode": "invalid_method_name", "kind": "nothing"}


@pytest.mark.parametrize(("errorcode", "kind"), [
    ("invalidtoken", "token"), ("accessexception", "function"),
    ("webservice_access_exception", "function"), ("nopermissions", "capability"),
    ("requireloginerror", "capability"), ("invalid_method_name", "nothing"),
    ("competenciesarenotenabled", "nothing"), ("dmlreadexception", "failure"), ("", "failure"),
])
def test_moodle_exceptions_are_classified(errorcode: str, kind: str) -> None:
    fault = classify_exception("core_grades_get_gradeitems",
                               {"exception": "moodle_exception", "errorcode": errorcode,
                                "message": "<b>secret</b> internal detail"})
    assert fault.kind == kind
    assert "secret" not in fault.advice()


def test_a_missing_function_is_named_for_the_admin(moodle) -> None:
    moodle.fake.ws_functions = set(REQUIRED_FUNCTIONS) - {"core_grading_get_definitions"}
    with pytest.raises(LmsPermissionError) as caught:
        _ws(moodle).grading_definitions([1])
    assert "core_grading_get_definitions" in caught.value.message
    assert "External services" in caught.value.message  # where the admin adds it
    # Moodle's own text is logged, never shown on a page.
    assert "Access control exception" not in caught.value.message
    assert caught.value.details["kind"] == "function"


def test_a_wrong_token_is_a_permission_error(moodle) -> None:
    ws = MoodleWs(moodle.http, moodle.fake.base_url, "wrong")
    with pytest.raises(LmsPermissionError) as caught:
        ws.user_grade_items("2")
    assert "Manage tokens" in caught.value.message and "Invalid token" not in caught.value.message
    assert caught.value.details["kind"] == "token"


def test_site_info_lists_the_functions_the_tool_needs() -> None:
    listed = {f["name"] for f in load_fixture(
        "moodle", "ws_core_webservice_get_site_info.json")["response"]["functions"]}
    assert set(REQUIRED_FUNCTIONS) <= listed


def test_base_url_may_be_the_site_or_the_endpoint(moodle) -> None:
    for base in (moodle.fake.base_url, moodle.fake.base_url + "/webservice/rest/server.php"):
        assert MoodleWs(moodle.http, base, moodle.fake.ws_token).grade_items("2")
