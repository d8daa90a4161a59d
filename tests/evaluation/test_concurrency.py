"""Two processes evaluating the same learner at once decide once (row lock, PostgreSQL)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from lti_tool.domain.evaluation import GRADE_ITEM, SourceSpec
from lti_tool.grades import evaluation as ev
from lti_tool.grades.evidence import verify_chain
from lti_tool.store.models.evaluation import Decision, EvidenceRecord
from tests.conftest import POSTGRES_URL
from tests.evaluation.conftest import seed_course

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="row locks need PostgreSQL")


def test_concurrent_evaluations_pass_once(runtime, settings) -> None:
    with runtime.sessions() as db:
        course = seed_course(db, learners=1)
        item = str(course.items["project"].id)
        mapping = {code: [SourceSpec(GRADE_ITEM, item, Decimal(1))]
                   for code in ("LO1", "LO2", "LO3")}
        ev.save_mapping(db, settings, course.offering.id, mapping, course.by)
        course.mark(course.learners[0], "project", "95")
        db.commit()
        context_id, person_id = course.context.id, course.learners[0].id
    first_done = threading.Event()
    errors: list[BaseException] = []

    def evaluate(hold: bool) -> None:
        try:
            with runtime.sessions() as db:
                if not hold:
                    first_done.wait(5)
                ev.evaluate_changed(db, settings, context_id, {person_id})
                if hold:
                    first_done.set()
                    time.sleep(0.5)  # the other one now waits on the decision's row lock
                db.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=evaluate, args=(hold,)) for hold in (True, False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with runtime.sessions() as db:
        assert db.scalar(select(Decision.status)) == "passed"
        assert db.scalar(select(func.count(EvidenceRecord.id)).where(
            EvidenceRecord.event == "passed")) == 1
        assert verify_chain(db, settings) is None
