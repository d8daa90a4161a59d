"""Design Plan files and the Office's form: every problem reported, round trips exact."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from lti_tool.catalogue import importexport as ie
from lti_tool.domain.catalogue import DesignPlan
from lti_tool.domain.errors import ValidationFailed
from tests.catalogue.conftest import EXAMPLES
from tests.catalogue.forms import plan_form
from tests.catalogue.strategies import plans, relaxed


def problems_of(data) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        ie.parse_plan(data)
    return {p.path: p.message for p in caught.value.problems}


def example(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text())


@pytest.mark.parametrize("name", ["data-literacy-for-engineers.yaml",
                                  "technical-report-writing-embedded.yaml"])
def test_the_shipped_examples_are_valid_and_match_the_schema(name: str) -> None:
    data = example(name)
    assert ie.schema_problems(data) == []
    plan = ie.parse_plan(data)
    assert plan.warnings() == []
    assert plan.kind == ("course" if "literacy" in name else "embedded")


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(ie.schema())


@relaxed
@given(plans(), st.sampled_from(ie.FORMATS))
def test_any_valid_plan_round_trips_export_then_import(plan: DesignPlan, fmt: str) -> None:
    text = ie.dump(plan, fmt)
    assert ie.schema_problems(ie.load_text(text, fmt)) == []
    assert ie.parse_plan(ie.load_text(text, fmt)) == plan


def test_a_file_with_several_errors_reports_every_one_with_its_path() -> None:
    data = example("data-literacy-for-engineers.yaml")
    data["workload_hours"] = 45  # a course of more than 30 hours (domain)
    data["tqf_level"] = "six"  # wrong type (schema)
    data["colour"] = "blue"  # unknown field (schema)
    del data["purpose"]  # missing (schema)
    data["outcomes"][2]["rubric"]["threshold"] = "expert"  # not a level (domain)
    data["outcomes"][1]["rubric"]["levels"][2]["lower_bound"] = 40  # not increasing (domain)
    data["outcomes"][0]["domain"] = "attitude"  # not an enum value (schema)
    data["outcomes"][1]["code"] = "LO1"  # duplicate (domain)
    found = problems_of(data)
    assert set(found) == {
        "workload_hours", "tqf_level", "colour", "purpose", "outcomes[2].rubric.threshold",
        "outcomes[1].rubric.levels[2].lower_bound", "outcomes[0].domain", "outcomes[1].code",
    }
    assert found["purpose"] == "is required"
    assert found["colour"] == "unknown field"
    assert "30 hours" in found["workload_hours"]
    assert "'expert' is not one of the levels" in found["outcomes[2].rubric.threshold"]


def test_field_of_study_and_participation_form_are_checked_with_their_paths() -> None:
    data = example("data-literacy-for-engineers.yaml")
    del data["field_of_study"]
    data["participation_form"] = "hybrid"
    data["isced_f_code"] = "613"
    found = problems_of(data)
    assert set(found) == {"field_of_study", "participation_form", "isced_f_code"}
    assert found["field_of_study"] == "is required"
    assert found["participation_form"] == "must be one of online, in_person, blended"
    assert found["isced_f_code"].startswith("an ISCED-F 2013 code")
    data = example("technical-report-writing-embedded.yaml")
    data["isced_f_code"] = ""  # no code is fine; the text is what the badge needs
    assert ie.parse_plan(data).isced_f_code == ""
    unquoted = ie.load_text("isced_f_code: 0613\n")  # YAML 1.1 reads it as a number
    data.update(unquoted)
    assert problems_of(data) == {
        "isced_f_code": 'must be text: quote the code in YAML, e.g. "0613"'}


@pytest.mark.parametrize("value", [-1, "12,5", "1e3", True, "NaN", [], {"a": 1}])
def test_bad_decimals_are_problems_not_crashes(value) -> None:
    data = example("data-literacy-for-engineers.yaml")
    data["outcomes"][0]["rubric"]["levels"][1]["lower_bound"] = value
    assert "outcomes[0].rubric.levels[1].lower_bound" in problems_of(data)


@pytest.mark.parametrize(("text", "fmt", "where"), [
    ("code: [unclosed", "yaml", "line 1"),
    ("{\"code\": }", "json", "line 1"),
    ("code: a\n  b: c: d\n", "yaml", "line 2"),
])
def test_malformed_files_name_the_line(text: str, fmt: str, where: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        ie.load_text(text, fmt)
    assert where in str(caught.value)


@pytest.mark.parametrize("data", [None, [], "text", 7, {"outcomes": "many"},
                                  {"outcomes": [None, 3]}, {"requires": [1, None]}])
def test_any_shape_of_document_gives_problems_not_crashes(data) -> None:
    assert problems_of(data)


@relaxed
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(
                        ["code", "outcomes", "rubric", "levels", "lower_bound", "kind",
                         "threshold", "requires", "ects", "x"]), inner, max_size=4),
                    max_leaves=12))
def test_untrusted_documents_never_crash_the_parser(data) -> None:
    try:
        ie.parse_plan(data)
    except ValidationFailed as failed:
        assert failed.problems


def test_a_huge_file_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="larger than"):
        ie.load_text("a" * (ie.MAX_FILE_BYTES + 1))


def test_json_export_is_plain_json_with_exact_decimals() -> None:
    plan = ie.parse_plan(example("data-literacy-for-engineers.yaml"))
    data = json.loads(ie.dump(plan, "json"))
    assert data["outcomes"][2]["rubric"]["levels"][2]["lower_bound"] == 62.5
    assert data["workload_hours"] == 30


# --- the form -------------------------------------------------------------------------------


def test_form_fields_named_by_path_become_a_plan() -> None:
    plan = ie.parse_plan(example("data-literacy-for-engineers.yaml"))
    form = plan_form(plan) + [("csrf_token", "x"), ("sid", "y"),
                              ("outcomes[999].code", "too far"), ("__class__", "no")]
    assert ie.parse_plan(ie.form_to_dict(form)) == plan


def test_an_unchecked_required_box_means_optional_and_empty_numbers_are_missing() -> None:
    doc = ie.form_to_dict([("outcomes[0].code", "LO1"), ("outcomes[0].statement", "s"),
                           ("tqf_level", ""), ("ects", ""), ("workload_hours", "")])
    assert doc["outcomes"][0]["required"] is False
    assert "tqf_level" not in doc and "workload_hours" not in doc and doc["ects"] is None
    found = problems_of(doc)
    assert found["tqf_level"] == "is required"


@relaxed
@given(st.lists(st.tuples(st.text(max_size=40), st.text(max_size=10)), max_size=20))
def test_any_posted_form_gives_a_document_or_problems(pairs) -> None:
    try:
        ie.parse_plan(ie.form_to_dict(pairs))
    except ValidationFailed as failed:
        assert failed.problems
