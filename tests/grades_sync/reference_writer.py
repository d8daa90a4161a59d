"""The sync writer as it was before the bulk writer (ORM objects per row, one query per item
and page), kept as the reference the bulk writer is compared with
(`test_writer_equivalence.py`). Not used by the tool.

It compares what the LMS lists with what is stored and writes only the differences, inside
the caller's transaction (upserts per context)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from lti_tool.domain.roles import same_roles
from lti_tool.grades.marks import chunks
from lti_tool.grades.sync.lease import LEASE, RENEW_EVERY, LeaseLost
from lti_tool.lms.nrps import NrpsClient
from lti_tool.lms.source import AssessmentRecord, CriterionRecord, ItemRecord, ScoreRecord
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
        self._stored_item: int | None = None
        self._stored: dict[int, Any] = {}
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
        self._stored_item, self._stored = None, {}
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
        name, email … by sub, when the roster gave them)."""
        wanted = {s for s in subs if s not in self.people}
        if wanted:
            for chunk in chunks(sorted(wanted), 500):
                rows = self.db.execute(select(Person.sub, Person.id).where(
                    Person.platform_id == self.context.platform_id, Person.sub.in_(chunk)))
                self.people.update({sub: pid for sub, pid in rows})
            missing = [s for s in wanted if s not in self.people]
            if missing:
                created = [Person(platform_id=self.context.platform_id, sub=s,
                                  **(details or {}).get(s, {})) for s in missing]
                self.db.add_all(created)
                self.db.flush()
                self.counts.written += len(created)
                self.people.update({p.sub: p.id for p in created})
                if not self.roster_synced:
                    self._add_memberships([p.id for p in created], "learner", "gradebook")
        return {s: self.people[s] for s in subs if s in self.people}

    def _add_memberships(self, person_ids: list[int], role: str, source: str) -> None:
        existing = set(self.db.scalars(select(Membership.person_id).where(
            Membership.context_id == self.context.id, Membership.person_id.in_(person_ids))))
        rows = [{"context_id": self.context.id, "person_id": pid, "role": role,
                 "lis_roles": [], "active": True, "source": source, "updated_at": utcnow()}
                for pid in person_ids if pid not in existing]
        if rows:
            self.db.execute(insert(Membership), rows)
            self.counts.written += len(rows)

    def roster(self, nrps: NrpsClient, url: str, progress: Progress) -> None:
        """Members from NRPS: people and memberships updated; learners who left -> inactive."""
        # The roster is authoritative: people it creates get their membership from it.
        self.roster_synced = True
        listed: set[int] = set()
        memberships = {m.person_id: m for m in self.db.scalars(
            select(Membership).where(Membership.context_id == self.context.id))}
        for page in nrps.member_pages(url):
            self.renew()
            members = [m for m in page if m.role is not None]
            ids = self.person_ids([m.user_id for m in members], {
                m.user_id: {attr: getattr(m, attr) for attr in PERSON_FIELDS if getattr(m, attr)}
                for m in members})
            people = {p.id: p for p in self.db.scalars(
                select(Person).where(Person.id.in_(list(ids.values()))))}
            new_rows = []
            for member in members:
                pid = ids[member.user_id]
                listed.add(pid)
                self.counts.members += 1
                person = people[pid]
                changed = False
                for attr in PERSON_FIELDS:
                    value = getattr(member, attr)
                    if value and getattr(person, attr) != value:
                        setattr(person, attr, value)
                        changed = True
                self.counts.written += changed
                current = memberships.get(pid)
                if current is None:
                    new_rows.append({"context_id": self.context.id, "person_id": pid,
                                     "role": member.role, "lis_roles": list(member.roles),
                                     "active": member.active, "source": "nrps",
                                     "updated_at": utcnow()})
                    self.counts.changed_people.add(pid)
                elif (current.role, current.active) != (member.role, member.active) \
                        or not same_roles(current.lis_roles or [], member.roles):
                    current.role = member.role
                    current.active = member.active
                    current.lis_roles = list(member.roles)
                    current.updated_at = utcnow()
                    self.counts.written += 1
                    self.counts.changed_people.add(pid)
            if new_rows:
                self.db.execute(insert(Membership), new_rows)
                self.counts.written += len(new_rows)
            self.db.flush()
            progress(0, 0, "roster")
        for pid, membership in memberships.items():
            if pid not in listed and membership.active:
                membership.active = False  # left the course: keep the person and their data
                membership.updated_at = utcnow()
                self.counts.written += 1
                self.counts.changed_people.add(pid)
        self.db.flush()

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
        by_item: dict[int, list[tuple[int, ScoreRecord]]] = {}
        people = self.person_ids([r.user_sub for r in records])
        for record in records:
            item = items.get(record.item_external_id)
            pid = people.get(record.user_sub)
            if item is None or pid is None:
                continue
            by_item.setdefault(item.id, []).append((pid, record))
        now = utcnow()
        for item_id, entries in by_item.items():
            existing = self._stored_scores(item_id)
            inserts, updates = [], []
            item_seen = seen.setdefault(item_id, set())
            for pid, record in entries:
                if pid in item_seen:
                    continue  # listed twice (overlapping pages): the first one counts
                item_seen.add(pid)
                self.counts.scores += 1
                maximum = record.maximum if record.maximum is not None else items[
                    record.item_external_id].maximum
                row = existing.get(pid)
                if row is None:
                    inserts.append({"grade_item_id": item_id, "person_id": pid,
                                    "score": record.score, "maximum": maximum, "source": source,
                                    "lms_updated_at": record.lms_updated_at, "fetched_at": now})
                elif (row.score, row.maximum, row.lms_updated_at) != (
                        record.score, maximum, record.lms_updated_at):
                    updates.append({"id": row.id, "score": record.score, "maximum": maximum,
                                    "lms_updated_at": record.lms_updated_at, "fetched_at": now})
                else:
                    continue
                self.counts.changed_people.add(pid)
            if inserts:
                self.db.execute(insert(Score), inserts)
            if updates:
                self.db.execute(update(Score), updates)
            self.counts.written += len(inserts) + len(updates)

    def _stored_scores(self, item_id: int) -> dict[int, Any]:
        """The stored scores of one item by person, loaded once per item (sources deliver an
        item's pages one after the other, so only one item is held in memory)."""
        if self._stored_item != item_id:
            self._stored = {row.person_id: row for row in self.db.execute(
                select(Score.id, Score.person_id, Score.score, Score.maximum,
                       Score.lms_updated_at).where(Score.grade_item_id == item_id))}
            self._stored_item = item_id
        return self._stored

    def clear_missing(self, item: GradeItem, seen: set[int]) -> None:
        """A complete item's learners without a result no longer have a grade."""
        stale = [(sid, pid) for sid, pid in self.db.execute(
            select(Score.id, Score.person_id).where(
                Score.grade_item_id == item.id, Score.score.is_not(None)))
            if pid not in seen]
        if stale:
            self.db.execute(update(Score), [
                {"id": sid, "score": None, "lms_updated_at": None, "fetched_at": utcnow()}
                for sid, _ in stale])
            self.counts.written += len(stale)
            self.counts.changed_people.update(pid for _, pid in stale)

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


