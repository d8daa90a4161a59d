"""Running a sync: roster (NRPS) and every gradebook source of a context into the store.

One sync of one context runs in ONE database transaction, so a failure half-way leaves the
previous data exactly as it was. Only rows whose values changed are written
(`lti_tool.grades.sync.writer`); the lease (`lti_tool.grades.sync.lease`) keeps a second sync
of the same context from running at the same time. After the sync commits, the learners whose
marks changed are evaluated (`lti_tool.grades.decisions.evaluate_changed`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.domain.line_items import (
    OWN_LABEL_PREFIX,
    is_own_label,
    is_own_line_item,
    moodle_grade_item_ids,
)
from lti_tool.errors import NotFound, ToolError
from lti_tool.grades.decisions import evaluate_changed
from lti_tool.grades.sync.lease import SyncBusy, acquire_lease, release_lease
from lti_tool.grades.sync.progress import FAILED, RUNNING, SUCCEEDED, LiveProgress, set_progress
from lti_tool.grades.sync.writer import Counts, Progress, Writer
from lti_tool.lms.http import LmsError, LmsHttp
from lti_tool.lms.nrps import NrpsClient
from lti_tool.lms.retry import retry_policy
from lti_tool.lms.source import GradebookSource, ItemRecord, sources_for
from lti_tool.lms.token import publish_signing_key
from lti_tool.outbound import client_for
from lti_tool.runtime import Runtime
from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import MicroCredentialVersion, Offering
from lti_tool.store.models.core import Context
from lti_tool.store.models.evaluation import OfferingLineItem
from lti_tool.store.models.grades import GradeItem, SyncRun

log = logging.getLogger(__name__)

# Incremental fetches start this long before the previous sync, for clock skew.
SINCE_MARGIN = timedelta(minutes=5)
# Recorded on a succeeded run whose evaluation failed; the next sync evaluates every learner.
EVALUATION_FAILED = ("The marks were saved, but evaluating the learners afterwards failed (it "
                     "was logged); the next sync evaluates every learner of this course again.")


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


def own_columns(db: Session, context_id: int) -> tuple[set[str], set[str]]:
    """The line item URLs the tool recorded for its own columns in this course (passback), and
    the labels it gave them."""
    rows = db.execute(
        select(OfferingLineItem.lineitem_url, MicroCredentialVersion.title)
        .join(Offering, Offering.id == OfferingLineItem.offering_id)
        .join(MicroCredentialVersion, MicroCredentialVersion.id == Offering.mc_version_id)
        .where(Offering.context_id == context_id)).all()
    return {url for url, _title in rows}, {OWN_LABEL_PREFIX + title for _url, title in rows}


def without_own_columns(listed: dict[str, list[ItemRecord]], own_urls: set[str],
                        own_labels: set[str]) -> dict[str, list[ItemRecord]]:
    """Every source's items minus the columns the tool made itself (grade passback), which
    are never a source of marks (`lti_tool.domain.line_items`)."""
    urls, labels = set(own_urls), set(own_labels)
    for record in listed.get("ags", []):
        if is_own_line_item(record.tag, record.activity_id) or record.external_id in urls:
            urls.add(record.external_id)
            labels.add(record.label)
    moodle_ids = moodle_grade_item_ids(urls)

    def own(source: str, record: ItemRecord) -> bool:
        if source == "ags":
            return record.external_id in urls
        if source == "moodle_ws":
            return record.external_id in moodle_ids
        return is_own_label(record.label, record.maximum, labels)

    return {source: [r for r in records if not own(source, r)]
            for source, records in listed.items()}


def without_ags_copies(listed: dict[str, list[ItemRecord]], stored_ags_urls: set[str]
                       ) -> dict[str, list[ItemRecord]]:
    """Moodle's web services list every grade item, including the ones AGS lists too (an AGS
    line item URL carries its grade item id): each column is stored once, from AGS, so an
    instructor sees it once and a mapping by title is not ambiguous. Line items stored by an
    earlier sync count too, so that a sync whose AGS read fails does not bring the copies
    back."""
    if "moodle_ws" not in listed:
        return listed
    urls = stored_ags_urls | {record.external_id for record in listed.get("ags", [])}
    copies = moodle_grade_item_ids(urls)
    return {**listed, "moodle_ws": [r for r in listed["moodle_ws"]
                                    if r.external_id not in copies]}


def _stored_ags_urls(db: Session, context_id: int) -> set[str]:
    return set(db.scalars(select(GradeItem.external_id).where(
        GradeItem.context_id == context_id, GradeItem.source == "ags")))


def _run_sources(writer: Writer, context: Context, sources: list[GradebookSource],
                 nrps: NrpsClient | None, since: datetime | None, progress: Progress
                 ) -> tuple[list[str], list[str]]:
    """Read the roster and every source; returns (sources read, warnings).

    A source that cannot be read is skipped with a warning and its stored marks are kept
    (the rest of the sync completes): each source is written inside a savepoint. The tool's
    own passback columns are never stored as a source (`without_own_columns`).
    """
    if nrps is not None and context.nrps_url:
        progress(0, 0, "roster")
        writer.roster(nrps, context.nrps_url, progress)
    warnings: list[str] = []
    listed: dict[str, list[ItemRecord]] = {}
    readable: list[GradebookSource] = []
    for source in sources:
        progress(0, 0, f"{source.name}: items")
        try:
            listed[source.name] = source.items()
        except LmsError as exc:
            warnings.append(_skipped(context, source, exc))
            continue
        readable.append(source)
    kept = without_ags_copies(without_own_columns(listed, *own_columns(writer.db, context.id)),
                              _stored_ags_urls(writer.db, context.id))
    read: list[str] = []
    for source in readable:
        mark = writer.mark()
        savepoint = writer.db.begin_nested()
        try:
            _write_source(writer, source, kept[source.name], since, progress)
        except LmsError as exc:
            savepoint.rollback()
            writer.restore(mark)
            warnings.append(_skipped(context, source, exc))
            continue
        savepoint.commit()
        read.append(source.name)
        warnings += source.warnings
    return read, warnings


# Shown on the sync page; the source's stored marks stay as they were.
SKIPPED = "{source} could not be read this time, so its marks were kept as stored: {reason}"
SOURCE_NAMES = {"ags": "AGS (the tool's own gradebook columns)",
                "moodle_ws": "Moodle web services", "canvas": "Canvas REST"}


def _skipped(context: Context, source: GradebookSource, exc: LmsError) -> str:
    log.warning("sync of context %s skipped source %s: %s", context.id, source.name,
                exc.message)
    return SKIPPED.format(source=SOURCE_NAMES.get(source.name, source.name), reason=exc.message)


def _write_source(writer: Writer, source: GradebookSource, records: list[ItemRecord],
                  since: datetime | None, progress: Progress) -> None:
    items = writer.items(source.name, records)
    criteria = writer.criteria(items, source.criteria())
    total = max(1, len(records))
    done: set[str] = set()
    seen: dict[int, set[int]] = {}
    for batch in source.batches(since if source.supports_since else None):
        writer.renew()
        if batch.scores:
            writer.scores(source.name, items, batch.scores, seen)
        if batch.raw is not None:
            writer.raw_scores(source.name, items, batch.raw, seen)
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
    holder: str = "",
) -> SyncResult:
    """Sync one context now; raises SyncBusy when another sync of it is running (`holder`:
    who asks, see `acquire_lease`).

    Failures are recorded on the SyncRun (status failed, error in plain words) and returned,
    with every change of this run rolled back.
    """
    factory = runtime.sessions
    with factory() as db:
        if db.get(Context, context_id) is None:
            raise NotFound(f"No course context with id {context_id}.")
    publish_signing_key(factory, runtime.settings)
    owner = acquire_lease(factory, context_id, holder=holder)
    if owner is None:
        raise SyncBusy("A sync of this course is already running; wait for it to finish.")
    http = http or LmsHttp(retry_policy(runtime.settings),
                           outbound=client_for(runtime.settings))
    requests_before = http.request_count
    report = progress or (lambda done, total, phase: None)
    live = LiveProgress(factory, context_id)

    def progress_all(done: int, total: int, phase: str) -> None:
        live(done, total, phase)
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
        set_progress(factory, context_id, state=RUNNING, run_id=run_id, done=0, total=0,
                     phase="starting", error=None)
        counts = Counts()
        try:
            with factory() as db:
                context = db.get(Context, context_id)
                assert context is not None
                sources, nrps = sources_for(db, runtime.settings, context, http,
                                            page_limit=page_limit)
                writer = Writer(db, context, owner, counts)
                read, warnings = _run_sources(writer, context, sources, nrps,
                                              since - SINCE_MARGIN if since else None,
                                              progress_all)
                writer.renew(force=True)
                finished = db.get(SyncRun, run_id)
                assert finished is not None
                _finish(finished, "succeeded", counts, http.request_count - requests_before,
                        read + (["nrps"] if nrps else []))
                finished.warnings = warnings
                db.commit()
        except Exception as exc:  # recorded for the instructor, then reported to the caller
            message = exc.message if isinstance(exc, ToolError) else (
                f"The sync stopped on an unexpected error ({type(exc).__name__}); it was logged.")
            if not isinstance(exc, ToolError):
                log.exception("sync of context %s failed", context_id)
            with factory() as db:
                failed = db.get(SyncRun, run_id)
                if failed is not None:
                    _finish(failed, "failed", Counts(), http.request_count - requests_before, [])
                    failed.error = message
                    db.commit()
            set_progress(factory, context_id, state=FAILED, phase="done", error=message)
            return SyncResult(run_id, context_id, "failed",
                              requests=http.request_count - requests_before, error=message)
    finally:
        release_lease(factory, context_id, owner)
    set_progress(factory, context_id, phase="evaluating")
    counts.everyone_changed |= owed
    evaluation_error = None
    if not _evaluate(runtime, context_id, counts):
        evaluation_error = EVALUATION_FAILED
        with factory() as db:
            owed_run = db.get(SyncRun, run_id)
            if owed_run is not None:
                owed_run.error = evaluation_error  # shown to the instructor; owed by the next sync
                db.commit()
    set_progress(factory, context_id, state=SUCCEEDED, phase="done", error=evaluation_error)
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
    """Hand the changed learners to the evaluation; False when the evaluation failed (the
    sync's marks stay saved)."""
    if not counts.changed_people and not counts.everyone_changed:
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
