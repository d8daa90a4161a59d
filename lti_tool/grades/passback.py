"""Grade passback: the score a decision shows in the LMS gradebook (LTI AGS).

It exists apart from the evaluation service so that an unreachable LMS never undoes a
decision: the evaluation only queues a `GradePassback` row in its transaction, together with a
`grades.passback` job for the course (the outbox, `lti_tool.jobs.enqueue`), and a worker runs
`send_passbacks` for that course as soon as the transaction commits, recording each failure on
its row; the job is retried with a backoff, and a periodic sweep sends whatever is left.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol, cast

from sqlalchemy import Dialect, Table, bindparam, event, func, or_, select, type_coerce, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.types import NullType

from lti_tool.domain import decisions as flow
from lti_tool.jobs import enqueue
from lti_tool.lms.ags import LINEITEM, SCOPE_LINEITEM, AgsClient, require_scope
from lti_tool.lms.canvas_rest import CanvasRest
from lti_tool.lms.http import (
    LmsBadReply,
    LmsError,
    LmsHttp,
    LmsPermissionError,
    LmsUnavailable,
    expect_ok,
    json_body,
)
from lti_tool.lms.retry import retry_policy
from lti_tool.lms.service import BearerClient
from lti_tool.lms.source import canvas_course_id, rest_base_url
from lti_tool.lms.token import ServiceTokens
from lti_tool.outbound import client_for
from lti_tool.secrets import unseal
from lti_tool.settings import Settings
from lti_tool.store.bulk import BulkInsert, conversions, driver_rows, placeholders
from lti_tool.store.db import referenced, utcnow
from lti_tool.store.models.catalogue import Offering
from lti_tool.store.models.core import Context, Person, Platform
from lti_tool.store.models.evaluation import Decision, GradePassback, OfferingLineItem
from lti_tool.store.models.jobs import RUNNING, WAITING, Job

log = logging.getLogger(__name__)

ACTIVITY = {flow.IN_PROGRESS: "InProgress", flow.REEVALUATION_GRANTED: "InProgress",
            flow.PASSED: "Completed", flow.FAILED: "Completed", flow.FAILED_FINAL: "Completed"}
GRADING = {flow.IN_PROGRESS: "Pending", flow.REEVALUATION_GRANTED: "Pending",
           flow.PASSED: "FullyGraded", flow.FAILED: "FullyGraded",
           flow.FAILED_FINAL: "FullyGraded"}
MAX_PASSBACK_TRIES = 8
PASSBACK_JOB = "grades.passback"
_QUEUED_CONTEXTS = "lti_tool_passback_contexts"  # session.info: contexts with a job this commit


def passback_values(status: str, share_attained: Decimal) -> tuple[Decimal, str, str]:
    """The score a decision shows in the LMS (its share of required LOs attained, in percent)
    and its activity and grading progress."""
    score = (Decimal(share_attained) * 100).quantize(Decimal("0.0001"))
    return score, ACTIVITY[status], GRADING[status]


def queue_passback(db: Session, decision: Decision,
                   known: dict[int, GradePassback | None] | None = None) -> None:
    """Record the score the LMS should show: share of required LOs attained, with progress.

    `known` holds passback rows already loaded for a batch (saves one query per learner).
    Nothing is queued unless the instructor chose passback for the offering.
    """
    offering = db.get(Offering, decision.offering_id)
    if offering is None or not offering.grade_passback:
        return
    score, activity, grading = passback_values(decision.status, decision.share_attained)
    if known is not None and decision.id in known:
        row = known[decision.id]
    else:
        row = db.scalar(select(GradePassback).where(GradePassback.decision_id == decision.id))
    if row is None:
        row = GradePassback(decision_id=decision.id, score_given=score,
                            activity_progress=activity, grading_progress=grading,
                            status="pending", tries=0, last_error="")
        db.add(row)
        if known is not None:
            known[decision.id] = row
        _queue_job(db, offering)
        return
    if (row.score_given, row.activity_progress, row.grading_progress) == \
            (score, activity, grading):
        return  # unchanged: a failed send keeps its retry count
    row.score_given, row.activity_progress, row.grading_progress = score, activity, grading
    row.status, row.tries, row.last_error = "pending", 0, ""
    for name in ("status", "tries", "last_error"):
        # written even when they look unchanged: a worker may have marked the row sent since
        # it was read (the old score), and the new one must wait to be sent
        flag_modified(row, name)
    _queue_job(db, offering)


PASSBACKS = cast(Table, GradePassback.__table__)
# Built once: the stored passback rows of a batch of decisions, as the driver returns them.
_STORED_PASSBACKS = select(
    PASSBACKS.c.decision_id, PASSBACKS.c.id, type_coerce(PASSBACKS.c.score_given, NullType()),
    PASSBACKS.c.activity_progress, PASSBACKS.c.grading_progress).where(
    PASSBACKS.c.decision_id.in_(bindparam("decisions", expanding=True)))


def queue_passbacks(db: Session, offering: Offering,
                    decisions: Sequence[tuple[int, str, Decimal]]) -> None:
    """`queue_passback` for many decisions of one offering at once, given as (id, status,
    share attained): their stored rows read in one query a batch and compared in written
    form, new rows inserted in bulk (COPY on PostgreSQL), changed ones updated with one
    executemany, and one job for the course. A row this session holds as an object goes
    through `queue_passback` (a bulk write never goes behind an object's back)."""
    if not offering.grade_passback or not decisions:
        return
    held = {obj.decision_id for obj in list(db.identity_map.values())
            if isinstance(obj, GradePassback)}
    for decision_id, _status, _share in decisions:
        if decision_id in held:
            queue_passback(db, referenced(db, Decision, decision_id))
    bulk = [row for row in decisions if row[0] not in held]
    if not bulk:
        return
    writes = _passback_writes(db.get_bind().dialect)
    db.flush()  # the raw statements below bypass the session's autoflush
    connection = db.connection()
    stored: dict[int, tuple[Any, ...]] = {}
    ids = [row[0] for row in bulk]
    for start in range(0, len(ids), 500):
        stored.update((row[0], row[1:]) for row in driver_rows(connection.execute(
            _STORED_PASSBACKS, {"decisions": ids[start:start + 500]})))
    now = writes.bind_time(utcnow())
    inserts, updates = [], []
    for decision_id, status, share in bulk:
        score, activity, grading = passback_values(status, share)
        written = writes.bind_score(score)
        row = stored.get(decision_id)
        if row is None:
            inserts.append((decision_id, written, writes.maximum, activity, grading, "pending",
                            0, "", now))
        elif (row[1:] != (written, activity, grading)
              and (writes.result_score(row[1]), *row[2:]) != (score, activity, grading)):
            updates.append((written, activity, grading, now, row[0]))
    if inserts:
        writes.insert(connection, inserts)
    if updates:
        connection.exec_driver_sql(writes.update_sql, updates)
    if inserts or updates:
        _queue_job(db, offering)


class _PassbackWrites:
    """The passback columns as the driver takes them, for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.bind_score, self.result_score = conversions(PASSBACKS, "score_given", dialect)
        self.maximum = conversions(PASSBACKS, "score_maximum", dialect)[0](Decimal(100))
        self.bind_time = conversions(PASSBACKS, "updated_at", dialect)[0]
        self.insert = BulkInsert(dialect, PASSBACKS, (
            "decision_id", "score_given", "score_maximum", "activity_progress",
            "grading_progress", "status", "tries", "last_error", "updated_at"))
        # as `queue_passback`: pending again, its tries and error cleared
        self.update_sql = placeholders(
            dialect, "UPDATE grade_passback SET score_given = ?, activity_progress = ?, "
            "grading_progress = ?, status = 'pending', tries = 0, last_error = '', "
            "updated_at = ? WHERE id = ?")


@lru_cache(maxsize=8)
def _passback_writes(dialect: Dialect) -> _PassbackWrites:
    return _PassbackWrites(dialect)


def _queue_job(db: Session, offering: Offering) -> None:
    """One `grades.passback` job per course and transaction, in that transaction (outbox):
    a worker sends the course's waiting scores as soon as the decision is committed."""
    queued: dict[int, str] = db.info.setdefault(_QUEUED_CONTEXTS, {})
    if offering.context_id in queued:
        return
    token = uuid.uuid4().hex
    queued[offering.context_id] = token
    enqueue(db, PASSBACK_JOB, {"context_id": offering.context_id},
            key=f"{PASSBACK_JOB}:{offering.context_id}:{token}",
            platform_id=offering.platform_id)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _new_transaction(session: Session) -> None:
    session.info.pop(_QUEUED_CONTEXTS, None)


def queue_offering_passbacks(db: Session, offering_id: int) -> int:
    """Queue every decision of an offering (passback was just switched on); how many."""
    decisions = list(db.scalars(select(Decision).where(Decision.offering_id == offering_id)))
    known = {row.decision_id: row for row in db.scalars(select(GradePassback).where(
        GradePassback.decision_id.in_([d.id for d in decisions])))} if decisions else {}
    rows: dict[int, GradePassback | None] = dict(known)
    for decision in decisions:
        rows.setdefault(decision.id, None)
        queue_passback(db, decision, rows)
    return len(decisions)


class PassbackClient(Protocol):
    """What passback needs of the LMS (an adapter over `lti_tool.lms.ags.AgsClient`)."""

    def create_line_item(self, lineitems_url: str, item: dict) -> str: ...

    def post_score(self, lineitem_url: str, score: dict) -> dict: ...


# Built once: every launch into a course with AGS runs it.
_SKIPPED_IN_COURSE = (
    select(GradePassback.id).join(Decision, Decision.id == GradePassback.decision_id)
    .join(Offering, Offering.id == Decision.offering_id)
    .where(Offering.context_id == bindparam("context_id"), GradePassback.status == "skipped")
    .limit(1))


def send_waiting_after_launch(db: Session, context: Context) -> None:
    """Scores skipped because the course had no AGS service go out once a launch brings one:
    a `grades.passback` job in the launch's own transaction (one query when nothing waits)."""
    if not context.ags_lineitems_url:
        return
    if db.scalar(_SKIPPED_IN_COURSE, {"context_id": context.id}) is not None:
        enqueue(db, "grades.passback", {"context_id": context.id},
                key=f"grades.passback:{context.id}:launch:{uuid.uuid4().hex}",
                platform_id=context.platform_id)


def ags_passback_client(db: Session, settings: Settings, context: Any) -> PassbackClient:
    """The real AGS client for a context, with the scopes its latest launch granted."""
    platform = db.get(Platform, context.platform_id)
    http = LmsHttp(retry_policy(settings), outbound=client_for(settings)).for_platform(platform)
    bearer = BearerClient(http, ServiceTokens(db, settings, platform, http))
    client = AgsClient(bearer, context.ags_scopes or [])

    class _Adapter:
        def create_line_item(self, lineitems_url: str, item: dict) -> str:
            """The column with the item's resourceId and tag, made only if the LMS lacks it
            (a run that created it but could not record it must not make a second one)."""
            require_scope(client.granted, SCOPE_LINEITEM,
                          action="create the micro-credential grade column")
            for found in client.line_items(lineitems_url, resource_id=item.get("resourceId"),
                                           tag=item.get("tag")):
                return found.id
            response = bearer.send("POST", lineitems_url, [SCOPE_LINEITEM], accept=LINEITEM,
                                   needed=SCOPE_LINEITEM, json=item,
                                   headers={"Content-Type": LINEITEM})
            expect_ok(response, "the new line item")
            body = json_body(response, "the new line item")
            if not isinstance(body, dict) or not body.get("id"):
                raise LmsBadReply("The LMS created the line item but returned no id.")
            return str(body["id"])

        def post_score(self, lineitem_url: str, score: dict) -> dict:
            return client.post_score(lineitem_url, score)

    return _Adapter()


def send_passbacks(db: Session, settings: Settings, *, limit: int = 200,
                   client_for: Callable[[Session, Settings, Any], PassbackClient] | None = None,
                   now: datetime | None = None, context_id: int | None = None,
                   ) -> dict[str, int]:
    """Send up to `limit` queued scores (of one course when `context_id` is given); each
    failure is recorded on its row and retried on the next run.

    On PostgreSQL the rows are locked (`FOR UPDATE SKIP LOCKED`) until the caller commits, so
    two workers sending the same course at once never send the same score twice.

    A course whose LMS stays busy (429/5xx after the retries) or refuses the tool (401/403)
    is left alone for the rest of the run: its other scores are `deferred` (untouched, no try
    spent) and do not count against `limit`, so one broken course never holds up the others.
    """
    now = now or utcnow()
    client_for = client_for or ags_passback_client
    counts = {"sent": 0, "failed": 0, "skipped": 0, "deferred": 0}
    clients: dict[int, PassbackClient] = {}
    blocked: set[int] = set()  # contexts whose LMS is busy or refuses the tool in this run
    processed, after_id = 0, 0
    while processed < limit:
        # Skipped rows come back once a launch has given the course an AGS service.
        query = (select(GradePassback)
                 .join(Decision, Decision.id == GradePassback.decision_id)
                 .join(Offering, Offering.id == Decision.offering_id)
                 .join(Context, Context.id == Offering.context_id)
                 .where(or_(GradePassback.status.in_(("pending", "failed")),
                            (GradePassback.status == "skipped")
                            & Context.ags_lineitems_url.is_not(None)),
                        GradePassback.tries < MAX_PASSBACK_TRIES, GradePassback.id > after_id)
                 .order_by(GradePassback.id).limit(limit))
        if blocked:
            query = query.where(Offering.context_id.not_in(sorted(blocked)))
        if context_id is not None:
            query = query.where(Offering.context_id == context_id)
        query = query.with_for_update(of=GradePassback, skip_locked=True)
        rows = db.scalars(query).all()
        if not rows:
            break
        for row in rows:
            if processed >= limit:
                break
            after_id = row.id
            decision = db.get(Decision, row.decision_id)
            offering = db.get(Offering, decision.offering_id)
            context = db.get(Context, offering.context_id)
            if context.id in blocked:
                counts["deferred"] += 1
                continue
            processed += 1
            if not context.ags_lineitems_url:
                row.status, row.last_error = "skipped", "The course has no AGS line items service."
                counts["skipped"] += 1
                continue
            content = (row.score_given, row.activity_progress, row.grading_progress)
            try:
                client = clients.get(context.id) or client_for(db, settings, context)
                clients[context.id] = client
                line = _line_item(db, settings, client, offering, context)
                client.post_score(line, {
                    "userId": db.get(Person, decision.person_id).sub,
                    "scoreGiven": float(row.score_given),
                    "scoreMaximum": float(row.score_maximum),
                    "activityProgress": row.activity_progress,
                    "gradingProgress": row.grading_progress,
                    "timestamp": now.isoformat().replace("+00:00", "Z"),
                })
            except Exception as exc:  # any LMS failure is recorded, never raised
                if isinstance(exc, LmsUnavailable | LmsPermissionError):
                    blocked.add(context.id)  # the same answer awaits the course's other scores
                _settle(db, row, content, status="failed", tries=row.tries + 1,
                        last_error=str(exc)[:2000] or type(exc).__name__)
                counts["failed"] += 1
                continue
            _settle(db, row, content, status="sent", sent_at=now, last_error="",
                    tries=row.tries + 1)
            counts["sent"] += 1
    db.flush()
    return counts


def _settle(db: Session, row: GradePassback, content: tuple, **values: Any) -> None:
    """Record how sending went, only if the score is still the one that was sent: a decision
    that changed meanwhile (another transaction) keeps its new score pending, with its own
    job, instead of being marked sent with the old one."""
    score, activity, grading = content
    db.execute(update(GradePassback).where(
        GradePassback.id == row.id, GradePassback.score_given == score,
        GradePassback.activity_progress == activity, GradePassback.grading_progress == grading,
    ).values(**values, updated_at=utcnow()).execution_options(synchronize_session=False))
    db.expire(row)


def _line_item(db: Session, settings: Settings, client: PassbackClient, offering: Offering,
               context: Any) -> str:
    """The offering's column in the LMS gradebook, created on first use and recorded at once,
    so that a score that fails afterwards does not make the next run create another one."""
    recorded = select(OfferingLineItem.lineitem_url).where(
        OfferingLineItem.offering_id == offering.id)
    existing = db.scalar(recorded)
    if existing is not None:
        return existing
    title = offering.mc_version.title
    label = f"Micro-credential: {title}"
    url = client.create_line_item(context.ags_lineitems_url, {
        "label": label, "scoreMaximum": 100,
        "tag": "micro-credential", "resourceId": f"offering-{offering.id}",
    })
    try:
        with db.begin_nested():
            db.add(OfferingLineItem(offering_id=offering.id, lineitem_url=url))
    except IntegrityError:  # another worker recorded the column first: use theirs
        return db.scalar(recorded) or url
    keep_out_of_course_total(db, settings, context, label)
    return url


def keep_out_of_course_total(db: Session, settings: Settings, context: Any,
                             label: str) -> bool:
    """Canvas with an API token: mark the new column's assignment "do not count towards the
    final grade". Best effort (logged): the README tells instructors how to do it by hand,
    and Moodle has no web-service function for it."""
    platform = db.get(Platform, context.platform_id)
    base = rest_base_url(platform) if platform is not None else None
    token = unseal(settings, platform.rest_token) if platform is not None else None
    if platform is None or platform.lms_kind != "canvas" or not token or not base:
        return False
    course = canvas_course_id(db, context)
    if course is None:
        return False
    http = LmsHttp(retry_policy(settings), outbound=client_for(settings)).for_platform(platform)
    rest = CanvasRest(http, base, token)
    try:
        marked = rest.omit_from_final_grade(course, label)
    except LmsError as exc:
        log.warning("could not keep %r out of the final grade in Canvas course %s: %s",
                    label, course, exc.message)
        return False
    if marked is None:
        log.warning("no single Canvas assignment named %r in course %s to keep out of the "
                    "final grade", label, course)
        return False
    return True


def passback_status(db: Session, context_id: int) -> dict[str, Any]:
    """How sending grades to the course's LMS gradebook went, for the instructor: counts of
    sent, waiting and failed scores (failed ones are retried by the scheduler), and the latest
    problem (a refusal names the missing scope)."""
    rows = db.execute(
        select(GradePassback.status, func.count())
        .join(Decision, Decision.id == GradePassback.decision_id)
        .join(Offering, Offering.id == Decision.offering_id)
        .where(Offering.context_id == context_id).group_by(GradePassback.status)).all()
    by_status = dict(rows)
    counts = {"sent": by_status.get("sent", 0), "waiting": by_status.get("pending", 0),
              "failed": by_status.get("failed", 0)}
    problem = db.scalar(
        select(GradePassback.last_error)
        .join(Decision, Decision.id == GradePassback.decision_id)
        .join(Offering, Offering.id == Decision.offering_id)
        .where(Offering.context_id == context_id, GradePassback.status.in_(("failed", "skipped")))
        .order_by(GradePassback.updated_at.desc(), GradePassback.id.desc()).limit(1))
    reason = _waiting_reason(db, context_id) if counts["waiting"] else None
    return {**counts, "problem": problem or None, "waiting_reason": reason}


# A queued job no worker took within this long: nothing is running the background jobs.
STALLED_AFTER_SECONDS = 300


def _waiting_reason(db: Session, context_id: int) -> dict[str, Any]:
    """Why scores wait: `sending` (a worker has them now), `retry` (the LMS failed; `at` the
    next attempt), `queued` (a worker takes them within seconds), `stalled` (queued for
    minutes and no worker took them: none is running), or `scheduled` (no job: the periodic
    pass sends them; this happens after a job gave up)."""
    now = utcnow()
    jobs = [job for job in db.scalars(
        select(Job).where(Job.kind == PASSBACK_JOB, Job.status.in_((WAITING, RUNNING)))
        .order_by(Job.run_after)) if (job.payload or {}).get("context_id") == context_id]
    if any(job.status == RUNNING for job in jobs):
        return {"code": "sending"}
    if not jobs:
        return {"code": "scheduled"}
    first = jobs[0]
    if first.run_after > now:
        return {"code": "retry", "at": first.run_after, "error": first.last_error or None}
    if (now - first.run_after).total_seconds() > STALLED_AFTER_SECONDS:
        return {"code": "stalled", "since": first.run_after}
    return {"code": "queued"}
