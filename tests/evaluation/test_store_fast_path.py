"""The store-backed fast path (`OfferingRun.run`) stores exactly what the general path
(`run_general`, every learner through `step`) stores: the same decisions, snapshots (byte for
byte), attempts, evidence payloads, review flags, passback rows and run summaries, on generated
mappings, marks, windows and policies, over a first run and a re-run after marks changed
(issue 19). Both runs see the same data in the same transaction, each inside a savepoint that
is rolled back afterwards.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from lti_tool.domain.evaluation import (
    GRADE_ITEM,
    TOOL_RUBRIC,
    Mark,
    Outcome,
    SourceSpec,
    compile_mapping,
    compile_marks,
    evaluate_fast,
    evaluate_learner,
    result_to_dict,
)
from lti_tool.domain.evaluation_inputs import SnapshotJson, result_dicts, share_attained
from lti_tool.domain.rubric import PerformanceLevel, Rubric
from lti_tool.grades import evaluation as ev
from lti_tool.grades import evidence, passback
from lti_tool.grades.evidence import MarksDigest, inputs_digest, marks_digest
from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import MicroCredentialVersion
from lti_tool.store.models.evaluation import (
    Attempt,
    Decision,
    EvidenceRecord,
    GradePassback,
    MappingSource,
    OutcomeMapping,
    ReviewFlag,
    ToolRubricScore,
)
from lti_tool.store.models.grades import Score
from tests.evaluation.conftest import LEVELS, Course, seed_course

ITEMS = ("quiz1", "quiz2", "project", "retake")
LEVEL_CODES = [level["code"] for level in LEVELS]
weights = st.decimals(min_value=Decimal("0.5"), max_value=Decimal(5), places=1)
item_marks = st.one_of(st.none(), st.just("null"),
                       st.decimals(min_value=Decimal(-1), max_value=Decimal(110), places=2))
tool_levels = st.one_of(st.none(), st.sampled_from([*LEVEL_CODES, "unknown"]))


@st.composite
def mappings(draw) -> dict[str, list[tuple[str, str, Decimal]]]:
    """Per LO, (kind, item name or LO code, weight); an LO may have no source at all."""
    lo1 = draw(st.lists(st.sampled_from(ITEMS), unique=True, max_size=3))
    lo2 = draw(st.lists(st.sampled_from(ITEMS), unique=True, max_size=2))
    mapping = {"LO1": [(GRADE_ITEM, name, draw(weights)) for name in lo1],
               "LO2": [(GRADE_ITEM, name, draw(weights)) for name in lo2],
               "LO3": [(TOOL_RUBRIC, "LO3", draw(weights))]}
    if draw(st.booleans()):
        mapping["LO3"].append((GRADE_ITEM, draw(st.sampled_from(ITEMS)), draw(weights)))
    return mapping


@st.composite
def learner_marks(draw, learners: int) -> list[dict[str, Any]]:
    return [{"items": {name: draw(item_marks) for name in ITEMS},
             "tool": {1: draw(tool_levels), 2: draw(tool_levels)}} for _ in range(learners)]


@st.composite
def scenarios(draw, learners: int = 4) -> dict[str, Any]:
    return {"mapping": draw(mappings()), "marks": draw(learner_marks(learners)),
            "later": draw(learner_marks(learners)), "closed": draw(st.booleans()),
            "closed_later": draw(st.booleans()),
            "policy": draw(st.sampled_from(["instructor", "automatic"])),
            "same_later": draw(st.booleans())}


def _write_marks(course: Course, marks: list[dict[str, Any]], at) -> None:
    db = course.db
    for learner, theirs in zip(course.learners, marks, strict=True):
        for name, value in theirs["items"].items():
            row = db.scalar(select(Score).where(Score.grade_item_id == course.items[name].id,
                                                Score.person_id == learner.id))
            if value is None:
                if row is not None:
                    db.delete(row)
                continue
            if row is None:
                row = Score(grade_item_id=course.items[name].id, person_id=learner.id,
                            source="ags", fetched_at=at)
                db.add(row)
            row.score = None if value == "null" else value
            row.maximum = course.items[name].maximum if name != "retake" else None
            row.lms_updated_at = at
        for attempt_no, level in theirs["tool"].items():
            row = db.scalar(select(ToolRubricScore).where(
                ToolRubricScore.offering_id == course.offering.id,
                ToolRubricScore.person_id == learner.id, ToolRubricScore.attempt_no == attempt_no))
            if level is None:
                if row is not None:
                    db.delete(row)
                continue
            if row is None:
                row = ToolRubricScore(offering_id=course.offering.id, person_id=learner.id,
                                      outcome_code="LO3", attempt_no=attempt_no)
                db.add(row)
            row.level_code, row.scored_at = level, at
    db.flush()


def _stored(db: Session, course: Course) -> dict[str, Any]:
    """What a run left in the store, with database ids replaced by the learner they belong to
    (PostgreSQL sequences are not rolled back with a savepoint)."""
    decisions = db.execute(select(
        Decision.id, Decision.person_id, Decision.status, Decision.reevaluations_used,
        cast(Decision.outcomes, Text).label("outcomes_text"), Decision.share_attained,
        Decision.mapping_id,
        Decision.inputs_digest, Decision.passed_via, Decision.passed_at, Decision.decided_at,
        Decision.evaluated_at).where(Decision.offering_id == course.offering.id)
        .order_by(Decision.person_id)).all()
    person_of = {row[0]: row[1] for row in decisions}
    results = cast(Attempt.results, Text).label("results_text")
    attempts = sorted((person_of[a.decision_id], a.number, a.opened_at, a.closes_at,
                       a.closed_at, a.granted_via, a.granted_by, a.reason, text)
                      for a, text in db.execute(select(Attempt, results)
                                                .where(Attempt.decision_id.in_(person_of))))
    records = []
    for record in db.scalars(select(EvidenceRecord).where(
            EvidenceRecord.offering_id == course.offering.id).order_by(EvidenceRecord.seq)):
        payload = json.loads(record.payload)
        payload["decision_id"] = person_of.get(payload.get("decision_id"))
        records.append((record.seq, record.event, record.person_id, payload))
    flags = sorted((person_of[f.decision_id], f.reason, f.inputs_digest, json.dumps(f.details))
                   for f in db.scalars(select(ReviewFlag).where(
                       ReviewFlag.offering_id == course.offering.id)))
    passbacks = sorted((person_of[p.decision_id], p.score_given, p.activity_progress,
                        p.grading_progress, p.status, p.tries)
                       for p in db.scalars(select(GradePassback).where(
                           GradePassback.decision_id.in_(person_of))))
    return {"decisions": [row[1:] for row in decisions], "attempts": attempts,
            "evidence": records, "flags": flags, "passbacks": passbacks}


def _run(course: Course, settings_, scenario: dict[str, Any], *, fast: bool, now) -> dict:
    db = course.db
    at = now - timedelta(hours=1)
    closes = {True: now - timedelta(minutes=5), False: now + timedelta(days=30)}
    summaries = []
    with db.begin_nested() as savepoint:
        course.offering.window_closes_at = closes[scenario["closed"]]
        _write_marks(course, scenario["marks"], at)
        summaries.append(asdict(ev.evaluate_changed(db, settings_, course.context.id, now=now,
                                                    fast=fast)))
        if not scenario["same_later"]:
            _write_marks(course, scenario["later"], at + timedelta(minutes=1))
        course.offering.window_closes_at = closes[scenario["closed_later"]]
        later = now + timedelta(minutes=10)
        summaries.append(asdict(ev.evaluate_changed(db, settings_, course.context.id,
                                                    now=later, fast=fast)))
        stored = _stored(db, course)
        savepoint.rollback()
    _forget(db)
    return {"summaries": summaries, **stored}


def _forget(db: Session) -> None:
    """What a real rollback forgets and a savepoint's does not: the chains to seal, the
    courses whose passback job this transaction already queued."""
    db.info.pop(evidence.UNSEALED, None)
    db.info.pop(passback._QUEUED_CONTEXTS, None)
    db.expire_all()


def _mapped(db: Session, course: Course, mapping: dict) -> None:
    row = OutcomeMapping(offering_id=course.offering.id, attempt_no=1, version=1)
    for code, sources in mapping.items():
        for kind, ref, weight in sources:
            row.sources.append(MappingSource(
                outcome_code=code, kind=kind,
                ref=ref if kind == TOOL_RUBRIC else str(course.items[ref].id), weight=weight))
    db.add(row)
    db.flush()


def _scenario(*, passing: int, later_passing: int, closed: bool = False,
              closed_later: bool = False, policy: str = "automatic") -> dict[str, Any]:
    """A fixed scenario: the first `passing` learners attain everything (then
    `later_passing`; the others drop below the threshold), under a two-source mapping."""
    def marks(good: int) -> list[dict[str, Any]]:
        return [{"items": {"quiz1": Decimal(9) if n < good else Decimal(3),
                           "quiz2": Decimal(18) if n < good else None,
                           "project": Decimal(80) if n < good else Decimal("69.99"),
                           "retake": "null"},
                 "tool": {1: "proficient" if n < good else "developing", 2: "exemplary"}}
                for n in range(4)]
    return {"mapping": {"LO1": [(GRADE_ITEM, "quiz1", Decimal(1)),
                                (GRADE_ITEM, "quiz2", Decimal("0.5"))],
                        "LO2": [(GRADE_ITEM, "project", Decimal(2))],
                        "LO3": [(TOOL_RUBRIC, "LO3", Decimal(1))]},
            "marks": marks(passing), "later": marks(later_passing), "closed": closed,
            "closed_later": closed_later, "policy": policy, "same_later": False}


def test_the_fast_path_stores_what_the_general_path_stores(db: Session, settings) -> None:
    course = seed_course(db, learners=4)
    # Passes are held (nothing signed): the badge area is measured and tested on its own.
    db.get(MicroCredentialVersion, course.offering.mc_version_id).status = "in_review"
    db.commit()

    @hypothesis_settings(max_examples=40, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow])
    @given(scenario=scenarios())
    @example(scenario=_scenario(passing=4, later_passing=1))  # passes, then flags
    @example(scenario=_scenario(passing=1, later_passing=1, closed=True))  # fails, re-evaluates
    @example(scenario=_scenario(passing=2, later_passing=4, closed_later=True,
                                policy="instructor"))  # passes late, fails at close
    def check(scenario: dict[str, Any]) -> None:
        now = utcnow()
        with db.begin_nested() as example:
            course.offering.reevaluation_policy = scenario["policy"]
            _mapped(db, course, scenario["mapping"])
            general = _run(course, settings, scenario, fast=False, now=now)
            fast = _run(course, settings, scenario, fast=True, now=now)
            example.rollback()
        _forget(db)
        assert fast == general
        for summary in general["summaries"]:
            seen.update(name for name, count in summary.items() if count)

    seen: set[str] = set()
    check()
    # the fixed examples alone reach every kind of change
    assert seen >= {"passed", "failed", "reevaluations", "flagged", "changed"}


# -- the pure pieces, on generated rubrics, weights and marks -------------------------------

decimals = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1000), places=2)


@st.composite
def rubrics(draw) -> Rubric:
    inner = draw(st.lists(st.decimals(min_value=Decimal("0.001"), max_value=Decimal(100),
                                      places=3), min_size=1, max_size=4, unique=True))
    bounds = [Decimal(0), *sorted(inner)]
    levels = tuple(PerformanceLevel(f"L{index}", f"Level {index}", bound)
                   for index, bound in enumerate(bounds))
    return Rubric(levels, threshold=draw(st.sampled_from([level.code for level in levels])))


@st.composite
def cases(draw):
    outcomes, sources, marks = [], {}, []
    times = [None, utcnow(), utcnow() - timedelta(days=3)]
    for n in range(draw(st.integers(1, 4))):
        rubric = draw(rubrics())
        code = f"LO{n}"
        outcomes.append(Outcome(code, rubric, required=draw(st.booleans())))
        specs = []
        for k in range(draw(st.integers(0, 5))):
            kind = draw(st.sampled_from((GRADE_ITEM, "lms_rubric", TOOL_RUBRIC)))
            # a source may be shared by two LOs
            ref = f"s{draw(st.integers(0, 6))}" if kind != TOOL_RUBRIC else code
            if any(spec.key == (kind, ref) for spec in specs):
                continue
            specs.append(SourceSpec(kind, ref, draw(decimals)))
            if draw(st.integers(0, 4)) == 0:
                continue  # not marked
            at = draw(st.sampled_from(times))
            if kind == TOOL_RUBRIC:
                marks.append(Mark(kind, ref, level=draw(st.one_of(
                    st.none(), st.just("unknown"),
                    st.sampled_from([level.code for level in rubric.levels]))), at=at))
            else:
                marks.append(Mark(kind, ref, score=draw(st.one_of(st.none(), st.decimals(
                    min_value=Decimal(-5), max_value=Decimal(600), places=4))),
                    maximum=draw(st.one_of(st.none(), st.decimals(
                        min_value=Decimal(-1), max_value=Decimal(500), places=3))),
                    level=draw(st.one_of(st.none(), st.just("lvl"))), at=at))
        sources[code] = specs
    return outcomes, sources, marks


@hypothesis_settings(max_examples=400, deadline=None)
@given(cases(), st.booleans(), st.one_of(st.none(), st.integers(1, 99)))
def test_snapshot_and_digest_from_the_fast_results_are_the_general_ones(case, closed,
                                                                        mapping_id) -> None:
    outcomes, sources, marks = case
    general = evaluate_learner(outcomes, sources, marks, closed=closed)
    fast = evaluate_fast(compile_mapping(outcomes, sources), compile_marks(marks), closed=closed)
    by_key = {mark.key: mark for mark in marks}
    snapshot = result_dicts(outcomes, sources, fast, by_key)
    assert json.dumps(snapshot) == json.dumps({r.code: result_to_dict(r)
                                               for r in general.results})
    assert share_attained(fast) == general.share_attained
    specs = [spec for outcome in outcomes for spec in sources.get(outcome.code, ())]
    assert marks_digest(specs, by_key, mapping_id) == inputs_digest(general, mapping_id)
    assert marks_digest(list(reversed(specs)), by_key, mapping_id) == \
        inputs_digest(general, mapping_id)
    # The written forms, from pieces kept per mark: the same text, the first time and again
    # from the kept pieces (with and without a mark), and after `forget`.
    written, digest = SnapshotJson(outcomes, sources), MarksDigest(specs, mapping_id)
    fewer = dict(list(by_key.items())[1:])
    fewer_results = evaluate_fast(compile_mapping(outcomes, sources),
                                  compile_marks(fewer.values()), closed=closed)
    for _ in range(2):
        assert written(fast, by_key) == json.dumps(snapshot)
        assert written(fewer_results, fewer) == json.dumps(
            result_dicts(outcomes, sources, fewer_results, fewer))
        assert digest(by_key) == inputs_digest(general, mapping_id)
        assert digest(fewer) == marks_digest(specs, fewer, mapping_id)
    written.forget()
    digest.forget()
    assert written(fast, by_key) == json.dumps(snapshot)
    assert MarksDigest(list(reversed(specs)), mapping_id)(by_key) == \
        inputs_digest(general, mapping_id)
