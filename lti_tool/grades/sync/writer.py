"""The sync's writer: compares what the LMS lists with what is stored and writes only the
differences, inside the caller's transaction (upserts per context).

Marks are the bulk of a course (learners x items), so they are handled as plain rows: an item's
stored scores are read in one query, as the database driver returns them, and each mark the
LMS sent is compared in the column's own written form (the same conversion an INSERT would
apply; where the forms differ, the values are compared as numbers and instants, so 80 and 80.0
stay one unchanged mark). AGS result pages come unread (`RawScores`): a mark whose three raw
fields were seen written as the stored mark, or whose learner has no stored mark, is decided
from a memo of raw fields -> written form, without reading the entry (`Writer.raw_scores`).
New marks go in with one executemany per page (COPY on PostgreSQL), changed ones with one
executemany UPDATE by the unique key (item, person). People and memberships are read once per
course and written with multi-row statements. `tests/grades_sync/test_writer_equivalence.py`
holds this writer to the per-row ORM writer it replaced, `test_raw_scores.py` the raw path to
reading every entry, on generated pages.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Dialect, insert, select, update
from sqlalchemy.orm import Session

from lti_tool.domain.roles import same_roles
from lti_tool.grades.marks import CHUNK, chunks
from lti_tool.grades.sync.lease import LEASE, RENEW_EVERY, LeaseLost
from lti_tool.lms.nrps import NrpsClient
from lti_tool.lms.source import (
    AssessmentRecord,
    CriterionRecord,
    ItemRecord,
    RawScores,
    ScoreRecord,
)
from lti_tool.store.bulk import BulkInsert, conversions, placeholders
from lti_tool.store.db import utcnow
from lti_tool.store.models.core import Context, Membership, Person
from lti_tool.store.models.grades import (
    GradeItem,
    LmsRubricAssessment,
    LmsRubricCriterion,
    Score,
    SyncLock,
)

Progress = Callable[[int, int, str], None]
# What the roster may tell us about a person.
PERSON_FIELDS = ("name", "given_name", "family_name", "email", "lis_person_sourcedid")
PERSON_COLUMNS = tuple(getattr(Person, attr) for attr in PERSON_FIELDS)
# A person the roster says nothing about gets the columns' defaults.
PERSON_DEFAULTS = {"name": "", "given_name": "", "family_name": "", "email": None,
                   "lis_person_sourcedid": None}
# Stored score rows kept in memory between batches (all items together); an item dropped
# from memory is read again when it is written again.
CACHED_SCORES = 200_000


@dataclass
class Counts:
    items: int = 0
    scores: int = 0
    members: int = 0
    written: int = 0
    changed_people: set[int] = field(default_factory=set)
    everyone_changed: bool = False


class Writer:
    """Upserts for one context inside the caller's transaction."""

    def __init__(self, db: Session, context: Context, owner: str, counts: Counts) -> None:
        self.db = db
        self.context = context
        self.owner = owner
        self.counts = counts
        self.people: dict[str, int] = {}
        self.roster_synced = False
        self._stored: OrderedDict[int, dict[int, tuple[Any, ...]]] = OrderedDict()
        self._stored_rows = 0
        self._columns: _ScoreColumns | None = None
        self._memos: dict[int, _WrittenMemo] = {}
        # The lease is fresh; renewing now would take SQLite's write lock before it is needed.
        self._renewed_at = utcnow()

    # -- lease --------------------------------------------------------------------------------

    # -- skipping a source ---------------------------------------------------------------------
    def mark(self) -> tuple[dict[str, int], Counts]:
        """What to restore when a source's savepoint is rolled back."""
        counts = dataclasses.replace(self.counts,
                                     changed_people=set(self.counts.changed_people))
        return dict(self.people), counts

    def restore(self, mark: tuple[dict[str, int], Counts]) -> None:
        people, counts = mark
        self.people = dict(people)
        for name in ("items", "scores", "members", "written", "everyone_changed"):
            setattr(self.counts, name, getattr(counts, name))
        self.counts.changed_people = set(counts.changed_people)
        self._stored, self._stored_rows = OrderedDict(), 0

    def renew(self, force: bool = False) -> None:
        """Extend the lease from inside the sync's transaction (a competing acquirer waits or
        sees it held); fail if another worker took it over after it expired."""
        now = utcnow()
        if not force and now - self._renewed_at < RENEW_EVERY:
            return
        renewed = self.db.execute(
            update(SyncLock)
            .where(SyncLock.context_id == self.context.id, SyncLock.owner == self.owner)
            .values(expires_at=now + LEASE)
        )
        if renewed.rowcount != 1:
            raise LeaseLost("Another worker took over this course's sync; this one stopped.")
        self._renewed_at = now

    # -- people -------------------------------------------------------------------------------
    def person_ids(self, subs: Iterable[str], details: dict[str, dict] | None = None
                   ) -> dict[str, int]:
        """Person ids for `subs`, creating people the tool has not met yet (with `details`:
        name, email … by sub, when the roster gave them), in one multi-row INSERT."""
        subs = list(subs)
        self._create_people(subs, details)
        return {s: self.people[s] for s in subs if s in self.people}

    def _create_people(self, subs: Iterable[str], details: dict[str, dict] | None = None
                       ) -> None:
        """`self.people` gets an id for every sub in `subs` (see `person_ids`)."""
        known = self.people
        wanted = {s for s in subs if s not in known}
        if wanted:
            for chunk in chunks(sorted(wanted), CHUNK):
                rows = self.db.execute(select(Person.sub, Person.id).where(
                    Person.platform_id == self.context.platform_id, Person.sub.in_(chunk)))
                self.people.update({sub: pid for sub, pid in rows})
            missing = sorted(s for s in wanted if s not in self.people)
            if missing:
                now = utcnow()
                rows = [{"platform_id": self.context.platform_id, "sub": s, "updated_at": now,
                         **PERSON_DEFAULTS, **(details or {}).get(s, {})} for s in missing]
                created = dict(self.db.execute(
                    insert(Person).returning(Person.sub, Person.id), rows).all())
                self.counts.written += len(created)
                self.people.update(created)
                if not self.roster_synced:
                    self._add_memberships([created[s] for s in missing], "learner", "gradebook")

    def _add_memberships(self, person_ids: list[int], role: str, source: str) -> None:
        existing: set[int] = set()
        for chunk in chunks(person_ids, CHUNK):
            existing.update(self.db.scalars(select(Membership.person_id).where(
                Membership.context_id == self.context.id, Membership.person_id.in_(chunk))))
        now = utcnow()
        rows = [{"context_id": self.context.id, "person_id": pid, "role": role,
                 "lis_roles": [], "active": True, "source": source, "updated_at": now}
                for pid in person_ids if pid not in existing]
        if rows:
            self.db.execute(insert(Membership), rows)
            self.counts.written += len(rows)

    def roster(self, nrps: NrpsClient, url: str, progress: Progress) -> None:
        """Members from NRPS: people and memberships updated; learners who left -> inactive.

        The course's memberships and their people are read once (plain rows; a page's people
        the course did not have yet in one query more); only what changed is written, in one
        executemany per kind of change and page."""
        # The roster is authoritative: people it creates get their membership from it.
        self.roster_synced = True
        listed: set[int] = set()
        # person id -> the roster's fields as stored (updated as they are written)
        people: dict[int, dict[str, Any]] = {}
        for row in self.db.execute(
                select(Person.id, Person.sub, *PERSON_COLUMNS)
                .join(Membership, Membership.person_id == Person.id)
                .where(Membership.context_id == self.context.id,
                       Person.platform_id == self.context.platform_id)):
            self.people[row[1]] = row[0]
            people[row[0]] = dict(zip(PERSON_FIELDS, row[2:], strict=True))
        # person id -> [membership id, role, active, lis_roles]
        memberships: dict[int, list[Any]] = {
            pid: [mid, role, active, lis_roles] for mid, pid, role, active, lis_roles in
            self.db.execute(select(Membership.id, Membership.person_id, Membership.role,
                                   Membership.active, Membership.lis_roles)
                            .where(Membership.context_id == self.context.id))}
        for page in nrps.member_pages(url):
            self.renew()
            members = [m for m in page if m.role is not None]
            ids = self.person_ids([m.user_id for m in members], {
                m.user_id: {attr: getattr(m, attr) for attr in PERSON_FIELDS if getattr(m, attr)}
                for m in members})
            for chunk in chunks(sorted({pid for pid in ids.values() if pid not in people}),
                                CHUNK):
                for row in self.db.execute(select(Person.id, *PERSON_COLUMNS)
                                           .where(Person.id.in_(chunk))):
                    people[row[0]] = dict(zip(PERSON_FIELDS, row[1:], strict=True))
            now = utcnow()
            new_rows: list[dict[str, Any]] = []
            changed_people: dict[int, dict[str, Any]] = {}
            changed_memberships: dict[int, dict[str, Any]] = {}
            for member in members:
                pid = ids[member.user_id]
                listed.add(pid)
                self.counts.members += 1
                person = people[pid]
                changed = False
                for attr in PERSON_FIELDS:
                    value = getattr(member, attr)
                    if value and person[attr] != value:
                        person[attr] = value
                        changed = True
                if changed:
                    self.counts.written += 1
                    changed_people[pid] = {"id": pid, **person, "updated_at": now}
                current = memberships.get(pid)
                if current is None:
                    new_rows.append({"context_id": self.context.id, "person_id": pid,
                                     "role": member.role, "lis_roles": list(member.roles),
                                     "active": member.active, "source": "nrps",
                                     "updated_at": now})
                    memberships[pid] = [None, member.role, member.active, list(member.roles)]
                    self.counts.changed_people.add(pid)
                elif (current[1], current[2]) != (member.role, member.active) \
                        or not same_roles(current[3] or [], member.roles):
                    current[1:] = [member.role, member.active, list(member.roles)]
                    self.counts.written += 1
                    self.counts.changed_people.add(pid)
                    if current[0] is None:  # listed twice on the roster: inserted above
                        new_rows = [r for r in new_rows if r["person_id"] != pid]
                        new_rows.append({"context_id": self.context.id, "person_id": pid,
                                         "role": member.role, "lis_roles": list(member.roles),
                                         "active": member.active, "source": "nrps",
                                         "updated_at": now})
                        self.counts.written -= 1
                    else:
                        changed_memberships[pid] = {
                            "id": current[0], "role": member.role, "active": member.active,
                            "lis_roles": list(member.roles), "updated_at": now}
            if changed_people:
                self.db.execute(update(Person), list(changed_people.values()))
            if changed_memberships:
                self.db.execute(update(Membership), list(changed_memberships.values()))
            if new_rows:
                self.counts.written += len(new_rows)
                for mid, pid in self.db.execute(insert(Membership).returning(
                        Membership.id, Membership.person_id), new_rows):
                    memberships[pid][0] = mid
            progress(0, 0, "roster")
        now = utcnow()
        left = [{"id": m[0], "active": False, "updated_at": now}
                for pid, m in memberships.items() if pid not in listed and m[2]]
        if left:  # left the course: keep the person and their data
            self.db.execute(update(Membership), left)
            self.counts.written += len(left)
            self.counts.changed_people.update(
                pid for pid, m in memberships.items() if pid not in listed and m[2])

    # -- items --------------------------------------------------------------------------------
    def items(self, source: str, records: list[ItemRecord]) -> dict[str, GradeItem]:
        """Upsert the listed items; items no longer listed become inactive."""
        stored = {i.external_id: i for i in self.db.scalars(select(GradeItem).where(
            GradeItem.context_id == self.context.id, GradeItem.source == source))}
        now = utcnow()
        for record in records:
            values = {
                "label": record.label, "maximum": record.maximum, "kind": record.kind,
                "category": record.category, "resource_link_id": record.resource_link_id,
                "tag": record.tag, "lms_activity_id": record.activity_id,
                "lms_updated_at": record.lms_updated_at, "active": True,
            }
            item = stored.get(record.external_id)
            if item is None:
                item = GradeItem(context_id=self.context.id, source=source,
                                 external_id=record.external_id, created_at=now,
                                 updated_at=now, **values)
                self.db.add(item)
                stored[record.external_id] = item
                self.counts.written += 1
                continue
            diff = {k: v for k, v in values.items() if getattr(item, k) != v}
            if diff:
                if "maximum" in diff:
                    self.counts.everyone_changed = True
                for key, value in diff.items():
                    setattr(item, key, value)
                item.updated_at = now
                self.counts.written += 1
        listed = {r.external_id for r in records}
        for key, item in stored.items():
            if key not in listed and item.active:
                item.active = False
                item.updated_at = now
                self.counts.written += 1
                self.counts.everyone_changed = True
        self.db.flush()
        self.counts.items += len(records)
        return stored

    def criteria(self, items: dict[str, GradeItem], records: list[CriterionRecord]
                 ) -> dict[tuple[str, str], LmsRubricCriterion]:
        item_ids = [i.id for i in items.values()]
        stored: dict[tuple[int, str], LmsRubricCriterion] = {
            (c.grade_item_id, c.external_id): c for c in self.db.scalars(
                select(LmsRubricCriterion).where(LmsRubricCriterion.grade_item_id.in_(item_ids)))
        } if item_ids else {}
        by_key: dict[tuple[str, str], LmsRubricCriterion] = {}
        seen: set[tuple[int, str]] = set()
        for record in records:
            item = items.get(record.item_external_id)
            if item is None:
                continue
            levels = [{"id": i, "points": p or None, "description": d}
                      for i, p, d in record.levels]
            values = {"description": record.description, "max_points": record.max_points,
                      "levels": levels, "sort_order": record.sort_order, "active": True}
            key = (item.id, record.external_id)
            seen.add(key)
            criterion = stored.get(key)
            if criterion is None:
                criterion = LmsRubricCriterion(grade_item_id=item.id,
                                               external_id=record.external_id, **values)
                self.db.add(criterion)
                stored[key] = criterion
                self.counts.written += 1
            else:
                diff = {k: v for k, v in values.items() if getattr(criterion, k) != v}
                for attr, value in diff.items():
                    setattr(criterion, attr, value)
                self.counts.written += bool(diff)
            by_key[(record.item_external_id, record.external_id)] = criterion
        for key, criterion in stored.items():
            if key not in seen and criterion.active:
                criterion.active = False
                self.counts.written += 1
        self.db.flush()
        return by_key

    # -- scores -------------------------------------------------------------------------------
    def scores(self, source: str, items: dict[str, GradeItem], records: list[ScoreRecord],
               seen: dict[int, set[int]]) -> None:
        """Write the batch's scores that are new or changed (one executemany each for inserts
        and updates), comparing with the item's stored rows as the database holds them."""
        self._create_people([record.user_sub for record in records])
        people = self.people
        by_item: dict[str, list[ScoreRecord]] = {}
        for record in records:
            group = by_item.get(record.item_external_id)
            if group is None:
                by_item[record.item_external_id] = group = []
            group.append(record)
        self.db.flush()  # the raw statements below bypass the session's autoflush
        columns = self._score_columns()
        bind_score, bind_max, bind_at = columns.bind_score, columns.bind_maximum, columns.bind_at
        now = columns.bind_at(utcnow())
        changed = self.counts.changed_people
        for key, group in by_item.items():
            item = items.get(key)
            if item is None:
                continue
            item_id, default = item.id, item.maximum
            bound_default = bind_max(default)
            existing = self._stored_scores(item_id)
            inserts, updates = [], []
            item_seen = seen.setdefault(item_id, set())
            counted = len(item_seen)
            for record in group:
                pid = people.get(record.user_sub)
                if pid is None or pid in item_seen:
                    continue  # listed twice (overlapping pages): the first one counts
                item_seen.add(pid)
                maximum = record.maximum
                if maximum is None:
                    maximum, bound_max = default, bound_default
                else:
                    bound_max = bind_max(maximum)
                values = (bind_score(record.score), bound_max, bind_at(record.lms_updated_at))
                row = existing.get(pid)
                if row is None:
                    # Not cached afterwards: the learner is in `item_seen` from now on.
                    inserts.append((item_id, pid, values[0], bound_max, source, values[2], now))
                elif row == values or columns.same(row, record.score, maximum,
                                                   record.lms_updated_at):
                    continue
                else:
                    updates.append((*values, now, item_id, pid))
                    existing[pid] = values
                changed.add(pid)
            self.counts.scores += len(item_seen) - counted
            if inserts:
                columns.insert(self.db.connection(), inserts)
            if updates:
                self.db.connection().exec_driver_sql(columns.update_sql, updates)
            self.counts.written += len(inserts) + len(updates)

    def raw_scores(self, source: str, items: dict[str, GradeItem], raw: RawScores,
                   seen: dict[int, set[int]]) -> None:
        """`scores` for a page of raw marks (`RawScores`), reading only what may have changed.

        A known learner whose mark's three raw fields are in the item's memo of written forms
        is decided there (`_compare`): unchanged when stored exactly so, inserted when the
        learner has no stored mark. Every other entry is read and goes through `scores`, which
        decides as always; a learner listed twice in the page, once each way, sends the whole
        page there (the first listing counts). `tests/grades_sync/test_raw_scores.py` holds
        this to `scores` on generated pages.
        """
        item = items.get(raw.item_external_id)
        if item is None:
            self.scores(source, items, _read_all(raw), seen)
            return
        item_seen = seen.setdefault(item.id, set())
        now = self._score_columns().bind_at(utcnow())
        compared = self._compare(item, raw, source, now, item_seen)
        known = len(self.people)
        if compared.strangers:
            self._create_people(compared.strangers)
        if len(self.people) > known:  # learners the sync had not met yet: compare them too
            compared.undo(item_seen)
            compared = self._compare(item, raw, source, now, item_seen)
        records = _read_all(raw._replace(entries=compared.unread)) if compared.unread else []
        if records and not compared.decided().isdisjoint(
                self.people.get(record.user_sub) for record in records):
            compared.undo(item_seen)  # listed twice: in order, as the LMS sent them
            self.scores(source, items, _read_all(raw), seen)
            return
        self.counts.scores += len(compared.unchanged) + len(compared.inserts)
        if compared.inserts:
            self.db.flush()  # the raw statement bypasses the session's autoflush
            self._score_columns().insert(self.db.connection(), compared.inserts)
            self.counts.written += len(compared.inserts)
            self.counts.changed_people.update(row[1] for row in compared.inserts)
        if records:
            self.scores(source, items, records, seen)

    def _compare(self, item: GradeItem, raw: RawScores, source: str, now: Any,
                 item_seen: set[int]) -> _Compared:
        """Decide the entries of a raw page that the memo of written forms can decide (their
        learners now in `item_seen`), keep the rest for reading. Per entry: a few dict
        lookups, one memo lookup (`_WrittenMemo`) and one comparison; no numbers or instants
        built."""
        existing = self._stored_scores(item.id)
        memo = self._memo(item, raw)
        people, item_id = self.people, item.id
        compared = _Compared()
        unchanged, inserts, unread, strangers = (compared.unchanged, compared.inserts,
                                                 compared.unread, compared.strangers)
        user_field, (score_field, maximum_field, at_field) = raw.user_field, raw.fields
        lookup, written_of = memo.written.get, memo.written_of
        for entry in raw.entries:
            try:
                user = entry.get(user_field)
                pid = people.get(user) if user else None
                if pid in item_seen:
                    continue  # listed again after a listing that counted: the first counts
                key = (entry.get(score_field), entry.get(maximum_field), entry.get(at_field))
                written = lookup(key) or written_of(key)
            except (AttributeError, TypeError):  # not an object, or unhashable fields
                unread.append(entry)
                continue
            if pid is None or written is None:
                unread.append(entry)
                if pid is None and type(user) is str and user:
                    strangers.append(user)  # the sub `RawScores.read` gives this entry
                continue
            row = existing.get(pid)
            if row is None:  # in `insert_sql`'s column order
                inserts.append((item_id, pid, written[0], written[1], source, written[2], now))
            elif row == written:
                unchanged.append(pid)
            else:
                unread.append(entry)  # changed, or spelt differently: `scores` decides
                continue
            item_seen.add(pid)
        return compared

    def _memo(self, item: GradeItem, raw: RawScores) -> _WrittenMemo:
        """The item's memo of raw marks in their written form, for this source's reading."""
        memo = self._memos.get(item.id)
        if memo is None or memo.values is not raw.values or memo.default is not item.maximum:
            memo = self._memos[item.id] = _WrittenMemo(self._score_columns(), raw.values,
                                                       item.maximum)
        return memo

    def _score_columns(self) -> _ScoreColumns:
        if self._columns is None:
            self._columns = _ScoreColumns(self.db.get_bind().dialect)
        return self._columns

    def _stored_scores(self, item_id: int) -> dict[int, tuple[Any, ...]]:
        """The stored marks of one item by person, as the database returns them (score,
        maximum, lms_updated_at; no conversion), read in one query and kept while the item is
        being written (at most `CACHED_SCORES` rows of all items together)."""
        cached = self._stored.get(item_id)
        if cached is not None:
            self._stored.move_to_end(item_id)
            return cached
        self.db.flush()  # the raw statement bypasses the session's autoflush
        result = self.db.connection().exec_driver_sql(self._score_columns().stored_sql,
                                                      (item_id,))
        try:  # the driver's own tuples, not SQLAlchemy rows (one per learner and item)
            rows = {pid: (score, maximum, at)
                    for pid, score, maximum, at in result.cursor.fetchall()}
        finally:
            result.close()
        self._stored[item_id] = rows
        self._stored_rows += len(rows)
        while self._stored_rows > CACHED_SCORES and len(self._stored) > 1:
            _, dropped = self._stored.popitem(last=False)  # read again if needed
            self._stored_rows -= len(dropped)
        return rows

    def _forget_scores(self, item_id: int) -> None:
        dropped = self._stored.pop(item_id, None)
        if dropped is not None:
            self._stored_rows -= len(dropped)

    def clear_missing(self, item: GradeItem, seen: set[int]) -> None:
        """A complete item's learners without a result no longer have a grade."""
        stored = self._stored_scores(item.id)
        stale = [pid for pid in stored.keys() - seen if stored[pid][0] is not None]
        # Learners written since the item was read are all in `seen`; the next write of this
        # item reads it again.
        self._forget_scores(item.id)
        if stale:
            now = self._score_columns().bind_at(utcnow())
            self.db.connection().exec_driver_sql(self._score_columns().clear_sql,
                                                 [(now, item.id, pid) for pid in stale])
            self.counts.written += len(stale)
            self.counts.changed_people.update(stale)

    def assessments(self, criteria: dict[tuple[str, str], LmsRubricCriterion],
                    records: list[AssessmentRecord]) -> None:
        people = self.person_ids([r.user_sub for r in records])
        now = utcnow()
        wanted = [(criteria.get((r.item_external_id, r.criterion_external_id)),
                   people.get(r.user_sub), r) for r in records]
        wanted = [(c, p, r) for c, p, r in wanted if c is not None and p is not None]
        if not wanted:
            return
        existing = {(a.criterion_id, a.person_id): a for a in self.db.scalars(
            select(LmsRubricAssessment).where(LmsRubricAssessment.criterion_id.in_(
                sorted({c.id for c, _, _ in wanted}))))}
        for criterion, pid, record in wanted:
            row = existing.get((criterion.id, pid))
            values = {"points": record.points, "level_id": record.level_id,
                      "lms_updated_at": record.lms_updated_at}
            if row is None:
                row = LmsRubricAssessment(criterion_id=criterion.id, person_id=pid,
                                          fetched_at=now, **values)
                self.db.add(row)
                existing[(criterion.id, pid)] = row
            elif all(getattr(row, k) == v for k, v in values.items()):
                continue
            else:
                for attr, value in values.items():
                    setattr(row, attr, value)
                row.fetched_at = now
            self.counts.written += 1
            self.counts.changed_people.add(pid)
        self.db.flush()




_MISSING = object()


class _ScoreColumns:
    """The score table as the database driver sees it, for one dialect: the columns' own bind
    and result conversions, and the plain statements the writer sends with executemany."""

    def __init__(self, dialect: Dialect) -> None:
        table = Score.__table__
        self.bind_score, self.result_score = conversions(table, "score", dialect)
        self.bind_maximum, self.result_maximum = conversions(table, "maximum", dialect)
        bind_instant, self.result_at = conversions(table, "lms_updated_at", dialect)
        # Equal instants are written the same (in UTC), so the written form of each instant
        # is kept for the next score with the same one (results often share their times).
        # Not for numbers: 80 and 80.0 are equal but written as they came.
        bound: dict[Any, Any] = {None: bind_instant(None)}

        def bind_at(value: Any) -> Any:
            written = bound.get(value, _MISSING)
            if written is _MISSING:
                if len(bound) > 4096:
                    bound.clear()
                    bound[None] = bind_instant(None)
                written = bound[value] = bind_instant(value)
            return written

        self.bind_at = bind_at
        self.bind_instant = bind_instant
        # Written with qmark placeholders; the PostgreSQL drivers take %s.
        self.stored_sql = placeholders(dialect, "SELECT person_id, score, maximum, "
                                       "lms_updated_at FROM score WHERE grade_item_id = ?")
        # Inserts: COPY on PostgreSQL (psycopg), an executemany elsewhere (store.bulk).
        self.insert = BulkInsert(dialect, table, (
            "grade_item_id", "person_id", "score", "maximum", "source", "lms_updated_at",
            "fetched_at"))
        # By the unique key (grade_item_id, person_id): the writer keeps no score ids.
        self.update_sql = placeholders(dialect, "UPDATE score SET score = ?, maximum = ?, "
                                       "lms_updated_at = ?, fetched_at = ? "
                                       "WHERE grade_item_id = ? AND person_id = ?")
        self.clear_sql = placeholders(dialect, "UPDATE score SET score = NULL, "
                                      "lms_updated_at = NULL, fetched_at = ? "
                                      "WHERE grade_item_id = ? AND person_id = ?")

    def same(self, row: tuple[Any, ...], score: Any, maximum: Any, at: Any) -> bool:
        """A stored row (score, maximum, lms_updated_at as the driver returns them) holds
        these values: equal as numbers and instants, whatever their spelling (80 == 80.0)."""
        return (self.result_score(row[0]), self.result_maximum(row[1]),
                self.result_at(row[2])) == (score, maximum, at)

    def written(self, score: Any, maximum: Any, at: Any) -> tuple[Any, Any, Any]:
        """A mark in the form `scores` compares with a stored row (maximum already given)."""
        return self.bind_score(score), self.bind_maximum(maximum), self.bind_at(at)


@dataclass
class _Compared:
    """What `Writer._compare` made of a raw page."""

    unchanged: list[int] = field(default_factory=list)  # person ids
    inserts: list[tuple[Any, ...]] = field(default_factory=list)  # rows for `insert_sql`
    unread: list[Any] = field(default_factory=list)  # entries for `scores`, in their order
    strangers: list[str] = field(default_factory=list)  # subs of unread entries not met yet

    def decided(self) -> set[int]:
        return set(self.unchanged).union(row[1] for row in self.inserts)

    def undo(self, item_seen: set[int]) -> None:
        """Forget the decisions (their learners were not in `item_seen` before)."""
        item_seen.difference_update(self.decided())


def _read_all(raw: RawScores) -> list[ScoreRecord]:
    """A raw page read the general way."""
    return [record for record in map(raw.read, raw.entries) if record is not None]


# Numbers in a memo key stay below this in size, where an int and a float that are equal (and
# so the same key) read as equal numbers.
_EXACT = 2**53
# Raw marks kept per item's memo (a course's marks repeat a few values and times).
_MEMO_KEPT = 4096


class _WrittenMemo:
    """Raw mark fields -> the mark in the form `Writer.scores` compares with a stored row, for
    one item and one source's reading (`RawScores.values`, the item's maximum as default).

    Fields equal as a dict key must read as equal values, so a key holds only None, strings
    and numbers small enough that an equal int and float read as equal numbers (80 and 80.0:
    written differently, compared as numbers by `scores` too). Bools are refused: True is 1 as
    a key but no number when read. So that a plain lookup can never meet a bool, keys with a 0
    or a 1 in them are kept apart, with the fields' types in their key.
    """

    def __init__(self, columns: _ScoreColumns, values: Callable[[Any, Any, Any], Any],
                 default: Any) -> None:
        self.columns, self.values, self.default = columns, values, default
        self.written: dict[tuple[Any, ...], tuple[Any, Any, Any]] = {}
        self.typed: dict[tuple[Any, ...], tuple[Any, Any, Any]] = {}

    def written_of(self, key: tuple[Any, Any, Any]) -> tuple[Any, Any, Any] | None:
        """The written form of raw fields not found in `written`; None when they may not be
        compared that way (see the class)."""
        plain = True
        for value in key:
            kind = type(value)
            if value is None or kind is str:
                continue
            if (kind is not int and kind is not float) or not -_EXACT < value < _EXACT:
                return None
            if value == 0 or value == 1:
                plain = False
        memo, memo_key = ((self.written, key) if plain
                          else (self.typed, (key, tuple(map(type, key)))))
        written = memo.get(memo_key)
        if written is None:
            score, maximum, at = self.values(*key)
            written = self.columns.written(score, self.default if maximum is None else maximum,
                                           at)
            if len(memo) >= _MEMO_KEPT:
                memo.clear()
            memo[memo_key] = written
        return written
