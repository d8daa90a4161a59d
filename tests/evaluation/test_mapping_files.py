"""Mappings as files: `lti-tool offering list | map | map-export`, the published schema, and
the same stored result as the instructor's mapping page (issue 12)."""

from __future__ import annotations

import json

import jsonschema
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from lti_tool.cli import main
from lti_tool.domain.errors import ValidationFailed
from lti_tool.domain.mapping_file import GradebookIndex, parse_mapping_file
from lti_tool.grades import mapping_files
from lti_tool.store.models.evaluation import Decision, MappingSource, OutcomeMapping
from tests.evaluation.conftest import seed_course
from tests.evaluation.test_routes import base, login

SCHEMA = json.loads(mapping_files.SCHEMA_PATH.read_text())


def run(runtime, *args: str, stdin: str | None = None):
    return CliRunner().invoke(main, list(args), obj={"runtime": runtime}, input=stdin)


def stored(db, offering_id: int) -> list[tuple]:
    mapping = db.scalar(select(OutcomeMapping).where(OutcomeMapping.offering_id == offering_id)
                        .order_by(OutcomeMapping.version.desc()).limit(1))
    return sorted((s.outcome_code, s.kind, s.ref, str(s.weight)) for s in mapping.sources)


def test_list_map_and_export_round_trip(runtime, db, tmp_path) -> None:
    course = seed_course(db)
    db.commit()
    listed = run(runtime, "offering", "list", "--json")
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    assert (row["id"], row["mc_code"], row["mc_version"], row["course_lms_id"]) == (
        course.offering.id, "DATA-101", 1, "course-1")
    assert row["registration"]["issuer"] == "https://lms.example.edu"
    plain = run(runtime, "offering", "list")
    assert plain.exit_code == 0 and "DATA-101 v1" in plain.output
    file = tmp_path / "mapping.yaml"
    file.write_text(yaml.safe_dump({"outcomes": {
        "LO1": [{"item": "Quiz1", "weight": 1}, {"item_id": course.items["quiz2"].id,
                                                 "weight": "2"}],
        "LO2": [{"item": "Project"}],
        "LO3": [{"tool_rubric": True, "weight": 1.5}],
    }}))
    saved = run(runtime, "offering", "map", str(course.offering.id), str(file))
    assert saved.exit_code == 0, saved.output
    assert "Saved mapping version 1" in saved.output
    db.expire_all()
    assert db.scalar(select(func.count(Decision.id))) == 3  # the learners were evaluated
    first = stored(db, course.offering.id)
    exported = run(runtime, "offering", "map-export", str(course.offering.id))
    assert exported.exit_code == 0
    document = yaml.safe_load(exported.output)
    jsonschema.validate(document, SCHEMA)
    assert document["outcomes"]["LO1"] == [{"item": "Quiz1", "weight": 1},
                                           {"item": "Quiz2", "weight": 2}]
    # The exported file maps to the same thing again (JSON this time, from standard input).
    again = run(runtime, "offering", "map", str(course.offering.id), "-",
                stdin=json.dumps(document))
    assert again.exit_code == 0, again.output
    db.expire_all()
    assert stored(db, course.offering.id) == first
    assert db.scalar(select(func.max(OutcomeMapping.version))) == 2


def test_every_problem_is_reported_with_its_path_and_nothing_is_stored(runtime, db,
                                                                       tmp_path) -> None:
    course = seed_course(db)
    db.add(course.items["quiz1"].__class__(context_id=course.context.id, source="ags",
                                           external_id="quiz1-copy", label="Quiz1"))
    db.commit()
    file = tmp_path / "bad.json"
    file.write_text(json.dumps({"offering": course.offering.id, "outcomes": {
        "LO1": [{"item": "Quiz1"}, {"item": "Nothing"}, {"item_id": 999999}],
        "LO2": [{"item": "Project", "weight": "heavy"}, {"item": "Project", "item_id": 1}],
        "LOX": [{"item": "Project"}],
        "LO3": [{"item": "Project", "weight": 0}],
    }, "colour": "blue"}))
    result = run(runtime, "offering", "map", str(course.offering.id), str(file))
    assert result.exit_code == 1
    for path in ("colour", "outcomes.LO1[0].item", "outcomes.LO1[1].item",
                 "outcomes.LO1[2].item_id", "outcomes.LO2[0].weight", "outcomes.LO2[1]"):
        assert f"{path}: " in result.output, (path, result.output)
    assert "give item_id" in result.output and "nothing was stored" in result.output
    assert db.scalar(select(func.count(OutcomeMapping.id))) == 0
    # Structure is fine but the rules are not: the rules' problems use the file's paths.
    file.write_text(yaml.safe_dump({"outcomes": {"LOX": [{"item": "Project"}],
                                                 "LO3": [{"item": "Project", "weight": 0}]}}))
    result = run(runtime, "offering", "map", str(course.offering.id), str(file))
    assert result.exit_code == 1
    assert "outcomes.LOX: " in result.output and "outcomes.LO3[0].weight: " in result.output
    file.write_text("outcomes: [unclosed")
    result = run(runtime, "offering", "map", str(course.offering.id), str(file))
    assert result.exit_code == 1 and "not valid YAML or JSON" in result.output
    other = run(runtime, "offering", "map", str(course.offering.id + 100), str(file))
    assert other.exit_code == 1
    assert db.scalar(select(func.count(MappingSource.id))) == 0


def test_the_page_and_the_file_store_the_same_mapping(app, client, runtime, db,
                                                      tmp_path) -> None:
    page_course = seed_course(db)
    file_course = seed_course(db, issuer="https://other.example.edu")
    db.commit()
    teacher = login(app, db, page_course, page_course.instructor, "instructor")
    form = {f"w|LO1|grade_item|{page_course.items['quiz1'].id}": "1",
            f"w|LO1|grade_item|{page_course.items['quiz2'].id}": "2",
            f"w|LO2|grade_item|{page_course.items['project'].id}": "1",
            "w|LO3|tool_rubric|LO3": "1.5"}
    saved = client.post(base(page_course) + "/mapping",
                        headers={**teacher, "Accept": "text/html"}, data=form)
    assert saved.status_code in (200, 303), saved.get_data(True)[:300]
    file = tmp_path / "m.yaml"
    file.write_text(yaml.safe_dump({"outcomes": {
        "LO1": [{"item": "Quiz1"}, {"item": "Quiz2", "weight": 2}],
        "LO2": [{"item": "Project"}], "LO3": [{"tool_rubric": True, "weight": "1.5"}]}}))
    assert run(runtime, "offering", "map", str(file_course.offering.id), str(file)).exit_code == 0
    db.expire_all()

    def by_label(course) -> list[tuple]:
        labels = {str(i.id): i.label for i in course.items.values()}
        return sorted((code, kind, labels.get(ref, ref), weight)
                      for code, kind, ref, weight in stored(db, course.offering.id))

    assert by_label(page_course) == by_label(file_course)
    page_decisions = db.scalars(select(Decision.status).where(
        Decision.offering_id == page_course.offering.id)).all()
    file_decisions = db.scalars(select(Decision.status).where(
        Decision.offering_id == file_course.offering.id)).all()
    assert sorted(page_decisions) == sorted(file_decisions)


def test_the_schema_is_published(client) -> None:
    reply = client.get(mapping_files.SCHEMA_URL_PATH)
    assert reply.status_code == 200 and reply.mimetype == "application/schema+json"
    assert reply.get_json()["$id"].endswith("/schemas/mapping.json")


INDEX = GradebookIndex(titles={"Quiz": ["1"], "Twin": ["2", "3"]},
                       item_ids=frozenset({"1", "2", "3"}), criterion_ids=frozenset({"9"}))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 2000), st.floats(),
                    st.text(max_size=8), st.sampled_from(["Quiz", "Twin", "1", "9", "1e999"]))
entries = st.dictionaries(st.sampled_from(["item", "item_id", "criterion_id", "tool_rubric",
                                           "weight", "colour"]), scalars, max_size=3)
documents = st.one_of(
    scalars, st.lists(scalars, max_size=3),
    st.dictionaries(st.sampled_from(["outcomes", "attempt", "offering", "x"]), st.one_of(
        scalars, st.dictionaries(st.text(max_size=4), st.one_of(
            scalars, st.lists(st.one_of(entries, scalars), max_size=4)), max_size=3)),
        max_size=3))


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(documents)
def test_the_parser_never_fails_on_untrusted_input_except_with_problems(data) -> None:
    try:
        parsed = parse_mapping_file(data, INDEX)
    except ValidationFailed as exc:
        assert exc.problems and all(p.message for p in exc.problems)
        return
    for code, specs in parsed.sources.items():
        for spec in specs:
            assert spec.kind in ("grade_item", "lms_rubric", "tool_rubric")
            assert spec.ref in {"1", "2", "3", "9", code}
            assert spec.weight.is_finite()


@given(st.lists(st.tuples(st.sampled_from(["LO1", "LO2"]),
                          st.sampled_from([{"item": "Quiz"}, {"item_id": 2}, {"item_id": "3"},
                                           {"criterion_id": 9}, {"tool_rubric": True}]),
                          st.decimals(min_value="0.01", max_value="1000", places=2)),
                max_size=6))
def test_valid_files_parse_to_the_sources_they_name(picked) -> None:
    outcomes: dict[str, list] = {}
    for code, source, weight in picked:
        outcomes.setdefault(code, []).append({**source, "weight": str(weight)})
    parsed = parse_mapping_file({"outcomes": outcomes}, INDEX)
    assert {c: len(v) for c, v in parsed.sources.items()} == {
        c: len(v) for c, v in outcomes.items()}
    jsonschema.validate({"outcomes": outcomes}, SCHEMA)
