"""The whole data path on the fake Moodle: LMS -> sync -> evaluation -> scheduler -> passback.

Real parts throughout: the AGS/NRPS clients, the sync's writer and its hand-over to the
evaluation, the evaluation job the scheduler runs, and the fake LMS answering in the captured
shapes. Only a spy records which learners the sync hands to the evaluation.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from lti_tool.domain.evaluation import GRADE_ITEM, SourceSpec
from lti_tool.grades import evaluation as ev
from lti_tool.grades.evidence import verify_chain
from lti_tool.grades.sync import runner, sync_context
from lti_tool.jobs.registry import registry
from lti_tool.runtime import Runtime
from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import Offering
from lti_tool.store.models.core import Context, Person
from lti_tool.store.models.evaluation import Decision, OfferingLineItem
from lti_tool.store.models.grades import GradeItem
from testkit.fakelms import FakeLms
from testkit.fakelms.data import Result
from tests.evaluation.conftest import seed_course
from tests.fakelms.pytest_fixtures import *  # noqa: F403
from tests.fakelms.pytest_fixtures import make_context

STAMP = "2026-11-22T17:55:04+00:00"


def _statuses(runtime: Runtime) -> dict[str, tuple[str, Decimal]]:
    """sub -> (status, share attained)."""
    with runtime.sessions() as db:
        rows = db.execute(select(Person.sub, Decision.status, Decision.share_attained)
                          .join(Decision, Decision.person_id == Person.id))
        return {sub: (status, share) for sub, status, share in rows}


def test_marks_flow_from_the_lms_to_decisions_and_back_to_its_gradebook(
        fast_runtime: Runtime, moodle_lms: FakeLms, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime, fake, settings = fast_runtime, moodle_lms, fast_runtime.settings
    # Items 5..8 are the captured AGS line items; learner 4 already has 87 on item 5.
    fake.course.results[5]["5"] = Result(60, 100, STAMP)
    fake.course.results[6] = {"4": Result(45, 50, STAMP), "5": Result(40, 50, STAMP)}
    fake.course.results[7] = {"4": Result(75, 100, STAMP), "5": Result(80, 100, STAMP)}
    context_id = make_context(runtime, fake, rest=False)
    with runtime.sessions() as db:
        course = seed_course(db, context=db.get(Context, context_id), subs=["4", "5", "6"])
        offering_id = course.offering.id
        db.commit()
    handed: list[set[int] | None] = []
    real = ev.evaluate_changed

    def spy(db, settings, context_id, person_ids=None, **kwargs):
        handed.append(None if person_ids is None else set(person_ids))
        return real(db, settings, context_id, person_ids, **kwargs)

    monkeypatch.setattr(runner, "evaluate_changed", spy)

    assert sync_context(runtime, context_id).status == "succeeded"
    with runtime.sessions() as db:
        item = {n: db.scalar(select(GradeItem.id).where(
            GradeItem.external_id == fake.lineitem_url(n))) for n in (5, 6, 7)}
        ev.save_mapping(db, settings, offering_id, {
            f"LO{k}": [SourceSpec(GRADE_ITEM, str(item[n]), Decimal(1))]
            for k, n in ((1, 5), (2, 6), (3, 7))}, course.by)  # re-evaluates everyone
        db.commit()
    # 4: 87 / 90 / 75 % -> passed; 5: 60 % misses LO1 -> 2 of 3; 6: no marks yet.
    assert _statuses(runtime) == {"4": ("passed", Decimal(1)),
                                  "5": ("in_progress", Decimal(2) / Decimal(3)),
                                  "6": ("in_progress", Decimal(0))}

    # One mark changes in the LMS: the next sync hands only that learner to the evaluation.
    fake.course.results[5]["5"] = Result(75, 100, "2026-11-23T09:00:00+00:00")
    handed.clear()
    assert sync_context(runtime, context_id).rows_written == 1
    with runtime.sessions() as db:
        assert handed == [{db.scalar(select(Person.id).where(Person.sub == "5"))}]
    assert _statuses(runtime)["5"] == ("passed", Decimal(1))
    handed.clear()
    assert sync_context(runtime, context_id).rows_written == 0
    assert handed == []  # nothing changed: nobody is evaluated

    # The passback job (and its periodic sweep) sends the grades into one new column.
    assert {"grades.passback", "grades.close_windows"} <= {
        spec.kind for spec in registry().periodic}
    _, counts = ev.run_scheduled(runtime)
    assert counts["sent"] == 3
    assert [c["label"] for c in fake.created_line_items] == ["Micro-credential: Data Literacy"]
    sent = {s["userId"]: s for s in fake.posted_scores}
    assert {u: (s["scoreGiven"], s["activityProgress"], s["gradingProgress"])
            for u, s in sent.items()} == {"4": (100.0, "Completed", "FullyGraded"),
                                          "5": (100.0, "Completed", "FullyGraded"),
                                          "6": (0.0, "InProgress", "Pending")}

    # The window closes: the same job fails the unfinished learner and tells the LMS.
    with runtime.sessions() as db:
        closes = db.get(Offering, offering_id).window_closes_at
    summary, counts = ev.run_scheduled(runtime, now=closes + timedelta(minutes=1))
    assert (summary.failed, counts["sent"]) == (1, 1)
    assert _statuses(runtime)["6"] == ("failed", Decimal(0))
    assert fake.posted_scores[-1]["userId"] == "6"
    assert (fake.posted_scores[-1]["activityProgress"],
            fake.posted_scores[-1]["gradingProgress"]) == ("Completed", "FullyGraded")
    assert len(fake.created_line_items) == 1
    with runtime.sessions() as db:
        assert db.scalar(select(OfferingLineItem.lineitem_url)) == fake.lineitem_url(10)
        assert verify_chain(db, settings) is None
    assert fake.course.results[10]["4"].score == 100.0  # the LMS gradebook shows it

    # The next sync sees the tool's own column (AGS item 10) and never offers it as a source of
    # marks (issue 12: it allowed a circular mapping; the Moodle Web Services shape of the same
    # column is tested in tests/grades_sync/test_own_columns.py).
    assert sync_context(runtime, context_id).status == "succeeded"
    with runtime.sessions() as db:
        stored = {(g.source, g.external_id) for g in db.scalars(select(GradeItem))}
        assert ("ags", fake.lineitem_url(10)) not in stored
        offering = db.get(Offering, offering_id)
        offered = ev.known_refs(db, offering)[GRADE_ITEM]
        labels = set(db.scalars(select(GradeItem.label).where(
            GradeItem.id.in_([int(i) for i in offered]))))
        assert not any(label.startswith("Micro-credential") for label in labels)
    assert utcnow() < closes  # the window was closed by the job's clock, not by waiting
