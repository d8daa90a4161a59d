"""Rules written once: the assessment window ("open offering") and the offering scope.

Each rule has one definition (`domain.decisions.window_open` with its SQL form in
`store.models.windows`; `catalogue.offerings.visible`). These tests hold the Python and SQL
forms together on the boundaries (property tests against the real database), check what each
actor may see, and fail when a module writes either rule again by hand.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from lti_tool.catalogue.offerings import course_offerings, visible_offering
from lti_tool.domain.actors import Actor
from lti_tool.domain.decisions import window_open
from lti_tool.errors import NotFound
from lti_tool.grades.jobs import offering_contexts
from lti_tool.grades.windows import close_due_windows
from lti_tool.store.models.catalogue import Offering
from lti_tool.store.models.core import Context
from lti_tool.store.models.evaluation import Attempt, Decision
from tests.evaluation.conftest import Course, seed_course
from tests.evaluation.test_routes import base, login

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
# Offsets around `now`, the boundary (0) included: the moment of closing is closed.
moments = st.one_of(st.none(), st.integers(-3, 3).map(lambda s: NOW + timedelta(seconds=s)),
                    st.integers(-10**6, 10**6).map(lambda s: NOW + timedelta(seconds=s)))
function_db = settings(max_examples=60, deadline=None,
                       suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_the_rule_on_its_boundaries() -> None:
    assert window_open(None, NOW)
    assert window_open(NOW + timedelta(microseconds=1), NOW)
    assert not window_open(NOW, NOW)
    assert not window_open(NOW - timedelta(days=1), NOW)
    assert not window_open(None, NOW, finalized_at=NOW - timedelta(days=1))
    assert not window_open(NOW + timedelta(days=1), NOW, finalized_at=NOW)


@function_db
@given(closes_at=moments, finalized_at=moments)
def test_an_offering_is_open_in_sql_exactly_when_the_rule_says(
        course: Course, closes_at: datetime | None, finalized_at: datetime | None) -> None:
    db, offering = course.db, course.offering
    offering.window_closes_at, offering.finalized_at = closes_at, finalized_at
    db.flush()
    expected = window_open(closes_at, NOW, finalized_at=finalized_at)
    assert offering.is_open(NOW) is expected
    in_sql = db.scalar(select(Offering.id).where(Offering.id == offering.id,
                                                 Offering.is_open(NOW)))
    assert (in_sql is not None) is expected
    assert (offering.context_id in offering_contexts(db, NOW)) is expected


@function_db
@given(closes_at=moments)
def test_a_reevaluation_window_is_open_in_sql_exactly_when_the_rule_says(
        course: Course, closes_at: datetime | None) -> None:
    db = course.db
    attempt = db.scalar(select(Attempt).where(Attempt.number == 2))
    if attempt is None:
        decision = Decision(platform_id=course.platform.id, offering_id=course.offering.id,
                            person_id=course.learners[0].id, status="reevaluation_granted",
                            reevaluations_used=1)
        db.add(decision)
        db.flush()
        attempt = Attempt(decision_id=decision.id, number=2, opened_at=NOW)
        db.add(attempt)
    attempt.closes_at = closes_at
    db.flush()
    expected = window_open(closes_at, NOW)
    assert attempt.is_open(NOW) is expected
    in_sql = db.scalar(select(Attempt.id).where(Attempt.id == attempt.id, Attempt.is_open(NOW)))
    assert (in_sql is not None) is expected


def test_a_finalized_offering_closes_for_a_learner_who_joins_later(db) -> None:
    """Closing due windows asks the same rule as the sync: finalized is closed, as a passed
    date is (a learner who joins a finalized course is decided like one who joins after the
    date, not left "in progress" forever)."""
    course = seed_course(db, learners=1, closes_in=None)
    course.offering.finalized_at = NOW - timedelta(days=1)
    db.flush()
    summary = close_due_windows(db, NOW)
    decision = db.scalar(select(Decision).where(Decision.offering_id == course.offering.id))
    assert decision is not None and decision.status == "failed", summary


# --- which offerings an actor may see ---------------------------------------------------------

def _second_course(db, course: Course) -> Offering:
    """Another course of the same registration, running the same micro-credential."""
    context = Context(platform_id=course.platform.id, context_id="course-2", title="Course 2")
    db.add(context)
    db.flush()
    offering = Offering(platform_id=course.platform.id, context_id=context.id,
                        mc_version_id=course.offering.mc_version_id)
    db.add(offering)
    db.flush()
    return offering


def test_each_actor_sees_the_offerings_the_scope_gives(db) -> None:
    mine = seed_course(db)
    other_course = _second_course(db, mine)
    elsewhere = seed_course(db, issuer="https://other.example.edu")
    platform, context = mine.platform.id, mine.context.id
    for role in ("learner", "instructor"):
        actor = Actor(person_id=None, role=role, platform_id=platform, context_id=context)
        assert visible_offering(db, actor, mine.offering.id) is mine.offering
        for hidden in (other_course, elsewhere.offering):
            with pytest.raises(NotFound):
                visible_offering(db, actor, hidden.id)
        assert course_offerings(db, actor) == [mine.offering]
    office = Actor(person_id=None, role="admin", platform_id=platform, context_id=context)
    assert visible_offering(db, office, other_course.id) is other_course  # its registration's
    with pytest.raises(NotFound):
        visible_offering(db, office, elsewhere.offering.id)
    assert course_offerings(db, office) == [mine.offering]  # the course it launched from
    for nobody in (Actor(person_id=None, role="admin"),
                   Actor(person_id=None, role="instructor", platform_id=platform)):
        assert course_offerings(db, nobody) == []
        with pytest.raises(NotFound):
            visible_offering(db, nobody, mine.offering.id)


def test_pages_of_every_area_scope_offerings_alike(app, client, db) -> None:
    """The instructor's settings page (catalogue), mapping page (grades) and the learner's
    request (grades) answer by the one scope: another course's offering is 404 to its
    instructor and learner, and visible to the registration's Office."""
    mine = seed_course(db)
    other = _second_course(db, mine)
    db.commit()
    teacher = login(app, db, mine, mine.instructor, "instructor")
    learner = login(app, db, mine, mine.learners[0], "learner")
    office = login(app, db, mine, mine.instructor, "admin")
    assert client.get(f"/instructor/offerings/{other.id}", headers=teacher).status_code == 404
    assert client.get(f"/instructor/offerings/{mine.offering.id}",
                      headers=teacher).status_code == 200
    assert client.get(base(mine) + "/mapping", headers=teacher).status_code == 200
    assert client.get(f"/instructor/offerings/{other.id}/mapping",
                      headers=teacher).status_code == 404
    assert client.get(f"/instructor/offerings/{other.id}/mapping",
                      headers=office).status_code == 200
    assert client.post(f"/learner/offerings/{other.id}/reevaluation-request",
                       headers=learner).status_code == 404


# --- nobody writes either rule again ----------------------------------------------------------

PACKAGE = Path(__file__).resolve().parents[2] / "lti_tool"
WINDOW_FIELDS = {"window_closes_at", "closes_at", "finalized_at"}
# Where the rules are defined (and the one place a window is moved: recording a finalize).
HOMES = {"domain/decisions.py", "store/models/windows.py", "store/models/catalogue.py",
         "store/models/evaluation.py", "catalogue/offerings.py"}
ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def _field(node: ast.AST, names: set[str]) -> bool:
    return isinstance(node, ast.Attribute) and node.attr in names


def restatements(tree: ast.AST) -> list[int]:
    """Lines that compare a window field with a moment, test one for NULL in SQL, or compare
    an offering's platform or course with an actor's: the rules of this file, by hand."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(op, ORDERING) for op in node.ops) and any(
                    _field(side, WINDOW_FIELDS) for side in sides):
                found.append(node.lineno)
            if any(_field(s, {"platform_id", "context_id"}) and isinstance(s, ast.Attribute)
                   and isinstance(s.value, ast.Name) and s.value.id in ("Offering", "offering")
                   for s in sides) and any(
                    isinstance(s, ast.Attribute) and isinstance(s.value, ast.Name)
                    and s.value.id == "actor" for s in sides):
                found.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("is_", "is_not", "isnot") \
                and _field(node.func.value, WINDOW_FIELDS):
            found.append(node.lineno)
    return found


def test_the_scanner_sees_the_restatements_it_is_for() -> None:
    samples = ["o.window_closes_at <= now", "Offering.finalized_at.is_(None)",
               "now < attempt.closes_at", "offering.context_id != actor.context_id",
               "Offering.platform_id == actor.platform_id"]
    for sample in samples:
        assert restatements(ast.parse(sample)) == [1], sample
    assert restatements(ast.parse("offering.finalized_at is not None")) == []


def test_no_module_restates_the_window_or_scope_rules() -> None:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name in HOMES or name.startswith("store/migrations/"):
            continue
        lines = restatements(ast.parse(path.read_text(encoding="utf-8")))
        if lines:
            found[name] = lines
    assert found == {}, ("use Offering.is_open / Attempt.is_open (domain.decisions.window_open) "
                         "and lti_tool.catalogue.offerings instead of writing the rule again")
