"""Gradebook sources fed LMS replies of any shape: LmsError at worst, never a crash."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lti_tool.lms.http import LmsError
from lti_tool.lms.source import CanvasSource, MoodleWsSource

scalars = st.none() | st.booleans() | st.integers(-5, 10**10) | st.floats() | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["id", "userid", "gradeitems", "itemtype", "graderaw", "grademax",
                         "cmid", "itemmodule", "iteminstance", "competency", "definitions",
                         "method", "rubric", "rubric_criteria", "levels", "score", "criteria",
                         "criterionid", "levelid", "itemid", "grades", "points", "ratings",
                         "links", "user", "learning_outcome", "assignment_id", "user_id",
                         "rubric_assessment", "lti_id", "name", "gradedategraded", "category"]),
        inner, max_size=5),
    max_leaves=25)


class Stub:
    """Answers every client method with the generated value (wrapped as the client would)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __getattr__(self, name: str):
        def reply(*_args: Any, **_kwargs: Any) -> Any:
            if name == "outcome_results":
                return (self.value if isinstance(self.value, list) else [],
                        self.value if isinstance(self.value, dict) else {})
            if name == "submission_pages":
                return iter([self.value if isinstance(self.value, list) else []])
            if name == "grade_tree":
                return self.value if isinstance(self.value, dict) else {}
            return self.value if isinstance(self.value, list) else []
        return reply


def _drain(source) -> None:
    try:
        source.items()
        source.criteria()
        for _batch in source.batches(None):
            pass
    except LmsError:
        pass


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_moodle_source_never_crashes(value: Any) -> None:
    _drain(MoodleWsSource(Stub(value), "2"))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_canvas_source_never_crashes(value: Any) -> None:
    _drain(CanvasSource(Stub(value), "311"))
