"""Gradebook sync: roster (NRPS) and every gradebook source of a context into the store.

One sync of one context runs in ONE database transaction, so a failure half-way leaves the
previous data exactly as it was. Only rows whose values changed are written. A lease row in
`sync_lock` keeps a second sync of the same context (another thread, process or machine) from
running at the same time; it works the same on SQLite and PostgreSQL because it rests on the
primary key and a conditional UPDATE, not on advisory locks.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from lti_tool.errors import Conflict, NotFound, ToolError
from lti_tool.lms.http import LmsError, LmsHttp, RetryPolicy
from lti_tool.lms.nrps import NrpsClient
from lti_tool.lms.source import (
    AssessmentRecord,
    CriterionRecord,
    GradebookSource,
    ItemRecord,
    ScoreRecord,
    sources_for,
)
from lti_tool.lms.token import publish_signing_key
from lti_tool.runtime import Runtime
from lti_tool.settings import Settings
from lti_tool.store.db import utcnow
from lti_tool.store.models.core import Context, Membership, Person
from lti_tool.store.models.grades import (
    GradeItem,
    LmsRubricAssessment,
    LmsRubricCriterion,
    Score,
    SyncLock,
    SyncRun,
)

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
# Renew the lease at most this often while a sync is writing.
RENEW_EVERY = timedelta(seconds=30)
# Incremental fetches start this long before the previous sync, for clock skew.
SINCE_MARGIN = timedelta(minutes=5)

Progress = Callable[[int, int, str], None]
# Recorded on a succeeded run whose evaluation failed; the next sync evaluates every learner.
EVALUATION_FAILED = ("The marks were saved, but evaluating the learners afterwards failed (it "
                     "was logged); the next sync evaluates every learner of this course again.")
# What the roster may tell us about a person.
PERSON_FIELDS = ("name", "given_name", "family_name", "email", "lis_person_sourcedid")


class SyncBusy(Conflict):
    """Another sync of this context holds the lease."""

    code = "sync_running"


class LeaseLost(ToolError):
    status = 409
    code = "sync_lease_lost"


# ---------------------------------------------------------------------------------------------
# The lease


def acquire_lease(factory: sessionmaker[Session], context_id: int,
                  lease: timedelta = LEASE) -> str | None:
    """Take the context's sync lease; the owner token, or None when someone else holds it."""
    owner = uuid.uuid4().hex
    now = utcnow()
    with factory() as db:
        try:
            held = db.get(SyncLock, context_id)
            if held is not None and held.expires_at > now:
                return None  # decided on a plain read: never wait behind a running sync
            if held is None:
                db.add(SyncLock(context_id=context_id, owner=owner, acquired_at=now,
                                expires_at=now + lease))
                db.commit()
                return owner
            taken = db.execute(
                update(SyncLock)
                .where(SyncLock.context_id == context_id, SyncLock.expires_at <= now)
                .values(owner=owner, acquired_at=now, expires_at=now + lease)
            )
            db.commit()
            return owner if taken.rowcount == 1 else None
        except (IntegrityError, OperationalError):
            # Lost the race for the INSERT, or SQLite is busy with another writer's sync.
            db.rollback()
            return None


def release_lease(factory: sessionmaker[Session], context_id: int, owner: str) -> None:
    with factory() as db:
        db.execute(delete(SyncLock).where(SyncLock.context_id == context_id,
                                          SyncLock.owner == owner))
        db.commit()


def lease_holder(db: Session, context_id: int) -> SyncLock | None:
    held = db.get(SyncLock, context_id)
    return held if held is not None and held.expires_at > utcnow() else None


# ---------------------------------------------------------------------------------------------
# Progress shown to the "Sync now" page (per process; the page falls back to SyncRun rows)

_progress_lock = threading.Lock()
_progress: dict[int, dict[str, Any]] = {}


def _set_progress(context_id: int, **values: Any) -> None:
    with _progress_lock:
        _progress.setdefault(context_id, {}).update(values)


def progress_of(context_id: int) -> dict[str, Any] | None:
    with _progress_lock:
        entry = _progress.get(context_id)
        return dict(entry) if entry else None


# ---------------------------------------------------------------------------------------------
# The writer: compares with what is stored and writes only differences


@dataclass
class Counts:
    items: int = 0
    scores: int = 0
    members: int = 0
    written: int = 0
    changed_people: set[int] = field(default_factory=set)
    everyone_changed: bool = False


class _Writer:
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

    # -- lease --------------------------------------------------------------------------------
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
            for chunk in _chunks(sorted(wanted), 500):
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
                elif (current.role, current.active, list(current.lis_roles or [])) != (
                        member.role, member.active, list(member.roles)):
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


def _chunks(values: list, size: int) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


# ---------------------------------------------------------------------------------------------
# Running a sync


@dataclass
class SyncResult:
    run_id: int | None
    context_id: int
    status: str
    items: int = 0
    scores: int = 0
    members: int = 0
    rows_written: int = 0
    requests: int = 0
    error: str | None = None
    warnings: tuple[str, ...] = ()


def _previous_success(db: Session, context_id: int) -> SyncRun | None:
    return db.scalar(select(SyncRun).where(
        SyncRun.context_id == context_id, SyncRun.status == "succeeded"
    ).order_by(SyncRun.started_at.desc()).limit(1))


def retry_policy(settings: Settings) -> RetryPolicy:
    """How hard to retry the LMS (sync and grade passback); tests and benchmarks shorten
    backoff through `settings.extra` (sync_retry_*)."""
    extra = settings.extra or {}
    defaults = RetryPolicy()
    return RetryPolicy(
        attempts=int(extra.get("sync_retry_attempts", defaults.attempts)),
        base_delay=float(extra.get("sync_retry_base_delay", defaults.base_delay)),
        max_delay=float(extra.get("sync_retry_max_delay", defaults.max_delay)),
        budget=float(extra.get("sync_retry_budget", defaults.budget)),
        read_timeout=float(extra.get("sync_read_timeout", defaults.read_timeout)),
    )


def _run_sources(writer: _Writer, context: Context, sources: list[GradebookSource],
                 nrps: NrpsClient | None, since: datetime | None, progress: Progress
                 ) -> tuple[list[str], list[str]]:
    """Read the roster and every source; returns (sources read, warnings).

    A source that cannot be read is skipped with a warning and its stored marks are kept
    (the rest of the sync completes): each source is written inside a savepoint.
    """
    if nrps is not None and context.nrps_url:
        progress(0, 0, "roster")
        writer.roster(nrps, context.nrps_url, progress)
    read: list[str] = []
    warnings: list[str] = []
    for source in sources:
        mark = writer.mark()
        savepoint = writer.db.begin_nested()
        try:
            _run_source(writer, source, since, progress)
        except LmsError as exc:
            savepoint.rollback()
            writer.restore(mark)
            log.warning("sync of context %s skipped source %s: %s", context.id, source.name,
                        exc.message)
            warnings.append(_SKIPPED.format(source=SOURCE_NAMES.get(source.name, source.name),
                                            reason=exc.message))
            continue
        savepoint.commit()
        read.append(source.name)
        warnings += source.warnings
    return read, warnings


# Shown on the sync page; the source's stored marks stay as they were.
_SKIPPED = "{source} could not be read this time, so its marks were kept as stored: {reason}"
SOURCE_NAMES = {"ags": "AGS (the tool's own gradebook columns)",
                "moodle_ws": "Moodle web services", "canvas": "Canvas REST"}


def _run_source(writer: _Writer, source: GradebookSource, since: datetime | None,
                progress: Progress) -> None:
    progress(0, 0, f"{source.name}: items")
    records = source.items()
    items = writer.items(source.name, records)
    criteria = writer.criteria(items, source.criteria())
    total = max(1, len(records))
    done: set[str] = set()
    seen: dict[int, set[int]] = {}
    for batch in source.batches(since if source.supports_since else None):
        writer.renew()
        if batch.scores:
            writer.scores(source.name, items, batch.scores, seen)
        if batch.assessments:
            writer.assessments(criteria, batch.assessments)
        for key in batch.complete_items:
            item = items.get(key)
            if item is not None and key not in done:
                writer.clear_missing(item, seen.pop(item.id, set()))
                done.add(key)
        progress(len(done), total, source.name)


def sync_context(
    runtime: Runtime,
    context_id: int,
    *,
    trigger: str = "manual",
    http: LmsHttp | None = None,
    progress: Progress | None = None,
    page_limit: int | None = None,
) -> SyncResult:
    """Sync one context now; raises SyncBusy when another sync of it is running.

    Failures are recorded on the SyncRun (status failed, error in plain words) and returned,
    with every change of this run rolled back.
    """
    factory = runtime.sessions
    with factory() as db:
        if db.get(Context, context_id) is None:
            raise NotFound(f"No course context with id {context_id}.")
    publish_signing_key(factory, runtime.settings)
    owner = acquire_lease(factory, context_id)
    if owner is None:
        raise SyncBusy("A sync of this course is already running; wait for it to finish.")
    http = http or LmsHttp(retry_policy(runtime.settings))
    requests_before = http.request_count
    report = progress or (lambda done, total, phase: None)

    def progress_all(done: int, total: int, phase: str) -> None:
        _set_progress(context_id, done=done, total=total, phase=phase)
        report(done, total, phase)

    try:
        with factory() as db:
            previous = _previous_success(db, context_id)
            since = previous.started_at if previous else None
            # The evaluation after the previous sync failed: this one evaluates everyone.
            owed = previous is not None and previous.error == EVALUATION_FAILED
            run = SyncRun(context_id=context_id, trigger=trigger, status="running",
                          started_at=utcnow(), incremental=since is not None)
            db.add(run)
            db.commit()
            run_id = run.id
        _set_progress(context_id, state="running", run_id=run_id, done=0, total=0,
                      phase="starting", error=None)
        counts = Counts()
        try:
            with factory() as db:
                context = db.get(Context, context_id)
                assert context is not None
                sources, nrps = sources_for(db, runtime.settings, context, http,
                                            page_limit=page_limit)
                writer = _Writer(db, context, owner, counts)
                read, warnings = _run_sources(writer, context, sources, nrps,
                                              since - SINCE_MARGIN if since else None,
                                              progress_all)
                writer.renew(force=True)
                run = db.get(SyncRun, run_id)
                assert run is not None
                _finish(run, "succeeded", counts, http.request_count - requests_before,
                        read + (["nrps"] if nrps else []))
                run.warnings = warnings
                db.commit()
        except Exception as exc:  # recorded for the instructor, then reported to the caller
            message = exc.message if isinstance(exc, ToolError) else (
                f"The sync stopped on an unexpected error ({type(exc).__name__}); it was logged.")
            if not isinstance(exc, ToolError):
                log.exception("sync of context %s failed", context_id)
            with factory() as db:
                run = db.get(SyncRun, run_id)
                if run is not None:
                    _finish(run, "failed", Counts(), http.request_count - requests_before, [])
                    run.error = message
                    db.commit()
            _set_progress(context_id, state="failed", error=message)
            return SyncResult(run_id, context_id, "failed",
                              requests=http.request_count - requests_before, error=message)
    finally:
        release_lease(factory, context_id, owner)
    _set_progress(context_id, state="succeeded", phase="done")
    counts.everyone_changed |= owed
    evaluation_error = None
    if not _evaluate(runtime, context_id, counts):
        evaluation_error = EVALUATION_FAILED
        with factory() as db:
            run = db.get(SyncRun, run_id)
            if run is not None:
                run.error = evaluation_error  # shown to the instructor; owed by the next sync
                db.commit()
    return SyncResult(run_id, context_id, "succeeded", items=counts.items,
                      scores=counts.scores, members=counts.members,
                      rows_written=counts.written,
                      requests=http.request_count - requests_before, error=evaluation_error,
                      warnings=tuple(warnings))


def _finish(run: SyncRun, status: str, counts: Counts, requests: int,
            sources: list[str]) -> None:
    run.status = status
    run.finished_at = utcnow()
    run.items_seen = counts.items
    run.scores_seen = counts.scores
    run.members_seen = counts.members
    run.rows_written = counts.written
    run.requests = requests
    if sources:
        run.sources = sources


def _evaluate(runtime: Runtime, context_id: int, counts: Counts) -> bool:
    """Hand the changed learners to the evaluation (when that module exists); False when the
    evaluation failed (the sync's marks stay saved)."""
    if not counts.changed_people and not counts.everyone_changed:
        return True
    try:
        module = importlib.import_module("lti_tool.grades.evaluation")
    except ImportError:
        return True
    evaluate_changed = getattr(module, "evaluate_changed", None)
    if evaluate_changed is None:
        return True
    people = None if counts.everyone_changed else set(counts.changed_people)
    try:
        with runtime.sessions() as db:
            evaluate_changed(db, runtime.settings, context_id, people)
            db.commit()
    except Exception:  # the sync itself succeeded; the next one evaluates everyone
        log.exception("evaluation after the sync of context %s failed", context_id)
        return False
    return True


def start_background_sync(runtime: Runtime, context_id: int, trigger: str = "launch"
                          ) -> threading.Thread | None:
    """Sync in a daemon thread (after a launch, or "Sync now"); None when one is running."""
    with runtime.sessions() as db:
        if lease_holder(db, context_id) is not None:
            return None

    def run() -> None:
        try:
            sync_context(runtime, context_id, trigger=trigger)
        except SyncBusy:
            log.info("sync of context %s skipped: already running", context_id)
            _set_progress(context_id, state="idle")
        except Exception as exc:  # a thread has no caller to report to: log and show it
            log.exception("background sync of context %s failed", context_id)
            _set_progress(context_id, state="failed", error=str(exc)[:300])

    _set_progress(context_id, state="running", phase="starting", done=0, total=0, error=None)
    thread = threading.Thread(target=run, name=f"sync-{context_id}", daemon=True)
    thread.start()
    return thread
