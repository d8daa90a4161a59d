"""The writer's raw-mark path (`Writer.raw_scores`) writes what reading every entry does.

AGS result pages in the captured Moodle shape (`/work/shared/fixtures/moodle`,
`ags_student_score_and_results.json`: userId, resultScore, resultMaximum, timestamp, comment,
scoreOf, id) and the fields Canvas leaves out or spells otherwise, with the values an LMS may
send (ints and floats that are equal, numeric strings, bools, huge numbers, NaN, objects,
entries that are not objects, learners listed twice, learners the tool does not know) go once
through `Writer.scores` with every entry read (`RawScores.read`) and once through
`Writer.raw_scores`, on a course an earlier sync of the same kind of pages stored. Both must
leave the same rows and the same counts (rows written, learners whose marks changed).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from lti_tool.grades.sync.writer import Counts, Writer
from lti_tool.lms.ags import RESULT_MARK_FIELDS, RESULT_USER
from lti_tool.lms.source import ItemRecord, RawScores, _result_reading
from tests.grades_sync.test_writer_equivalence import ITEMS, SUBS, _course, _state

FIXTURE = {"id": "http://127.0.0.1:8100/mod/lti/services.php/2/lineitems/5/lineitem/results"
                 "?type_id=1&user_id=4",
           "userId": "4", "resultScore": 87, "resultMaximum": 100,
           "comment": "Scored by harness tool",
           "scoreOf": "http://127.0.0.1:8100/mod/lti/services.php/2/lineitems/5/lineitem"
                      "?type_id=1",
           "timestamp": "2026-11-22T17:55:04+00:00"}

scores = st.sampled_from([None, 87, 87.0, "87", " 87.0", 0, 0.0, -0.0, 1, 1.0, True, False,
                          7.5, "7.5", 2**53, 2**53 + 1, float(2**60), 2**60, 10**20, 1e20,
                          float("nan"), float("inf"), "x", "", [87], {"v": 1}])
maxima = st.sampled_from([None, 100, 100.0, "100", 1, True, 50])
times = st.sampled_from([None, "2026-11-22T17:55:04+00:00", "2026-11-22T17:55:04Z",
                         "2026-11-22T20:55:04+03:00", "2026-11-23T08:00:00.123456+00:00",
                         "", "soon", 1700000000, 1700000000.0, True, 1, 1.0, [1]])
users = st.sampled_from([*SUBS, "new-1", 4, "", None, True, ["1"]])


@st.composite
def entries(draw: Any) -> Any:
    """One AGS result as an LMS may send it (mostly the fixture's shape)."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.sampled_from([None, "result", 7, ["userId"]]))
    entry = dict(FIXTURE, userId=draw(users), resultScore=draw(scores),
                 resultMaximum=draw(maxima), timestamp=draw(times))
    for field in draw(st.sets(st.sampled_from([RESULT_USER, *RESULT_MARK_FIELDS,
                                               "comment"]), max_size=2)):
        del entry[field]  # Canvas sends no timestamp; some results carry no maximum
    return entry


pages = st.lists(st.tuples(st.sampled_from([*ITEMS, "unknown"]),
                           st.lists(entries(), max_size=8), st.booleans()), max_size=5)
defaults = st.sampled_from([None, Decimal("100"), Decimal("100.0")])


def _sync(db: Session, context: Any, pages: list, default: Decimal | None, *, raw: bool,
          counts: Counts | None = None) -> Counts:
    """`runner._write_source` for AGS raw pages, through one path or the other."""
    counts = counts or Counts()
    writer = Writer(db, context, "owner", counts)
    items = writer.items("ags", [ItemRecord(key, key, Decimal(100)) for key in ITEMS])
    seen: dict[int, set[int]] = {}
    done: set[str] = set()
    for key, page, complete in pages:
        read, values = _result_reading(key, default)
        batch = RawScores(key, page, RESULT_USER, RESULT_MARK_FIELDS, read, values)
        if raw:
            writer.raw_scores("ags", items, batch, seen)
        else:
            writer.scores("ags", items, [r for r in map(read, page) if r is not None], seen)
        item = items.get(key)
        if complete and item is not None and key not in done:
            writer.clear_missing(item, seen.pop(item.id, set()))
            done.add(key)
    db.flush()
    return counts


def _late(pages: list) -> bool:
    """Marks of an item after the page that completed it (an item listed twice): the general
    path is no oracle for those (see test_writer_equivalence)."""
    complete: set[str] = set()
    for key, _page, done in pages:
        if key in complete:
            return True
        if done:
            complete.add(key)
    return False


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(earlier=pages, later=pages, default=defaults, again=st.booleans())
def test_raw_marks_are_written_as_reading_every_entry_writes(
        db: Session, earlier: list, later: list, default: Decimal | None, again: bool) -> None:
    outer = db.begin_nested()
    try:
        context = _course(db, {}, {}, {})
        _sync(db, context, earlier, default, raw=False)
        # Often the same pages again: unchanged marks, the raw path's own case.
        later = earlier if again else later
        results = []
        for raw in (False, True):
            attempt = db.begin_nested()
            try:
                results.append(_state(db, context, _sync(db, context, later, default, raw=raw)))
            finally:
                attempt.rollback()
                db.expire_all()
        general, fast = results
        if _late(later):
            assert {**fast, "counts": None, "scores": None} == {
                **general, "counts": None, "scores": None}
        else:
            assert fast == general
    finally:
        outer.rollback()


def test_an_unchanged_page_is_not_read(db: Session, monkeypatch) -> None:
    """The point of the raw path: marks stored as sent are compared, not read again."""
    outer = db.begin_nested()
    try:
        context = _course(db, {}, {}, {})
        page = [dict(FIXTURE, userId=sub, resultScore=float(n) * 10) for n, sub in
                enumerate(SUBS)]
        _sync(db, context, [("i1", page, True)], Decimal(100), raw=False)
        calls: list[Any] = []
        read, values = _result_reading("i1", Decimal(100))

        def counting(entry: Any) -> Any:
            calls.append(entry)
            return read(entry)

        counts = Counts()
        writer = Writer(db, context, "owner", counts)
        items = writer.items("ags", [ItemRecord(key, key, Decimal(100)) for key in ITEMS])
        seen: dict[int, set[int]] = {}
        writer.raw_scores("ags", items, RawScores("i1", page, RESULT_USER, RESULT_MARK_FIELDS,
                                                  counting, values), seen)
        writer.clear_missing(items["i1"], seen.pop(items["i1"].id))
        assert (calls, counts.written, counts.scores, counts.changed_people) == ([], 0, 5, set())
        changed = [dict(entry) for entry in page]
        changed[2]["resultScore"] = 99
        writer.raw_scores("ags", items, RawScores("i1", changed, RESULT_USER,
                                                  RESULT_MARK_FIELDS, counting, values), {})
        assert (calls, counts.written) == ([changed[2]], 1)
    finally:
        outer.rollback()
