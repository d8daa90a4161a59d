"""The tool's own passback column is recognised in every LMS shape and never stored as a source
of marks (issue 12)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from lti_tool.domain.line_items import is_own_line_item, moodle_grade_item_ids
from lti_tool.grades.sync.runner import without_own_columns
from lti_tool.lms.source import ItemRecord

MOODLE = "http://lms.example/mod/lti/services.php/2/lineitems/{}/lineitem?type_id=1"
CANVAS = "https://canvas.example/api/lti/courses/311/line_items/{}"


def item(external_id: str, label: str, *, tag: str | None = None, resource: str | None = None,
         maximum: str = "100") -> ItemRecord:
    return ItemRecord(external_id=external_id, label=label, maximum=Decimal(maximum), tag=tag,
                      activity_id=resource)


def test_moodle_ags_and_web_services_shapes() -> None:
    listed = {
        "ags": [item(MOODLE.format(5), "Breakout (LTI 1.3)", tag="", resource=""),
                item(MOODLE.format(9), "Micro-credential: Data Literacy",
                     tag="micro-credential", resource="offering-1")],
        "moodle_ws": [item("5", "Breakout (LTI 1.3)"),
                      item("9", "Micro-credential: Data Literacy")],
    }
    kept = without_own_columns(listed, set(), set())
    assert [r.external_id for r in kept["ags"]] == [MOODLE.format(5)]
    assert [r.external_id for r in kept["moodle_ws"]] == ["5"]


def test_canvas_ags_and_rest_shapes_and_a_column_known_only_from_the_store() -> None:
    listed = {
        "ags": [item(CANVAS.format(3), "Micro-credential: Data Literacy", tag="",
                     resource="")],
        "canvas": [item("41", "Micro-credential: Data Literacy"),
                   item("42", "Micro-credential: Data Literacy", maximum="10"),
                   item("43", "Lab report")],
    }
    # The tag was lost (an LMS that drops it): the recorded URL and label still recognise it.
    kept = without_own_columns(listed, {CANVAS.format(3)}, {"Micro-credential: Data Literacy"})
    assert kept["ags"] == []
    assert [r.external_id for r in kept["canvas"]] == ["42", "43"]


@given(st.text(max_size=30), st.text(max_size=30))
def test_only_the_tag_or_an_offering_resource_id_marks_an_own_line_item(tag: str,
                                                                        resource: str) -> None:
    own = is_own_line_item(tag, resource)
    assert own == (tag.strip() == "micro-credential"
                   or (resource.strip().startswith("offering-")
                       and resource.strip()[len("offering-"):].isdigit()
                       and resource.strip()[len("offering-"):].isascii()))


def test_moodle_grade_item_ids_come_from_the_line_item_url() -> None:
    assert moodle_grade_item_ids([MOODLE.format(9), CANVAS.format(3), "junk"]) == {"9"}
