"""The one read service of the annual report: facts from the store -> `domain.reports` figures.

An offering belongs to the calendar year in which its assessment window closes (or it was
finalized, or, while neither is known, created). Credentials count in the year they were issued
(revocations in the year they were revoked), follow-ups in the year they fell due, stakeholder
answers in the year they were given. Reads only; a fixed number of queries per year.

Everything is scoped by the institution (an installation may host several; an Office sees only
its own): its micro-credentials' versions, the offerings and credentials of those versions
(through whichever of its registrations they ran), and the institution's own answers, comments,
feedback and actions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Row, Text, cast, select
from sqlalchemy.orm import Session, joinedload

from lti_tool.domain import reports as figures
from lti_tool.domain.surveys import LIKERT
from lti_tool.errors import NotFound
from lti_tool.reports import actions as plan
from lti_tool.reports.surveys import questions_of
from lti_tool.settings import Settings
from lti_tool.store.models.badges import Credential
from lti_tool.store.models.catalogue import (
    ApprovalEvent,
    LearningOutcome,
    MicroCredentialVersion,
    Offering,
    PathwayComponent,
)
from lti_tool.store.models.core import AuditEntry, Institution, Membership
from lti_tool.store.models.evaluation import Decision
from lti_tool.store.models.reports import (
    FollowUp,
    InstructorReflection,
    StakeholderFeedback,
    SurveyComment,
    SurveyResponse,
)

ACCEPT_ACTION = "credential.accepted"
SHARE_ACTION = "credential.shared"
offering_moment = Offering.counted_at


def year_bounds(year: int) -> tuple[datetime, datetime]:
    return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Report:
    """Everything a rendering needs: figures, comparisons, texts, actions, questions."""

    institution: str
    institution_id: int
    year: int
    min_cell: int
    figures: dict
    previous: dict
    changes: dict
    questions: list
    comments: dict  # {"per_mc": {mc_id: [text]}, "pooled": [text]}
    reflections: dict  # {mc_id: [(worked, change)]}
    feedback_texts: dict  # {"per_mc": {mc_id: [text]}, "pooled": [text]}
    actions: list


def _versions(db: Session, institution_id: int) -> dict[int, MicroCredentialVersion]:
    return {v.id: v for v in db.scalars(
        select(MicroCredentialVersion)
        .where(MicroCredentialVersion.institution_id == institution_id)
        .options(joinedload(MicroCredentialVersion.micro_credential)))}


def _json(value: str | None) -> Any:
    """A JSON column read as text (`cast(column, Text)`), parsed with orjson: a year's
    decisions are tens of thousands of small documents."""
    return orjson.loads(value) if value else None


def _in(start: datetime, end: datetime, column) -> ColumnElement[bool]:
    return (column >= start) & (column < end)


def _year_facts(db: Session, institution_id: int, year: int,
                versions: dict[int, MicroCredentialVersion], likert: tuple[str, ...]
                ) -> figures.YearFacts:
    """The year's facts in seven queries whatever the number of offerings, read as plain rows
    (Core, no ORM objects); the booleans the figures need are computed by the database."""
    start, end = year_bounds(year)
    conn = db.connection()
    mc_of = {vid: v.micro_credential_id for vid, v in versions.items()}
    own = MicroCredentialVersion.institution_id == institution_id
    in_year = own & _in(start, end, offering_moment)
    offerings = conn.execute(select(Offering.id, Offering.context_id, Offering.mc_version_id)
                             .join(MicroCredentialVersion,
                                   MicroCredentialVersion.id == Offering.mc_version_id)
                             .where(in_year)).all()
    offering_mc = {o.id: mc_of[o.mc_version_id] for o in offerings}
    contexts: dict[int, list[int]] = defaultdict(list)
    for o in offerings:
        contexts[o.context_id].append(o.id)

    # Learners: every active learner membership of an offering's course, and every decision.
    learner_rows: dict[tuple[int, int], figures.LearnerFact] = {}
    parsed: dict[str | None, dict[str, bool | None]] = {}  # identical outcome sets parse once
    if offerings:
        for offering_id, person_id, status, via, reevaluations, stored in conn.execute(
                select(Decision.offering_id, Decision.person_id, Decision.status,
                       Decision.passed_via, Decision.reevaluations_used,
                       cast(Decision.outcomes, Text))
                .join(Offering, Offering.id == Decision.offering_id)
                .join(MicroCredentialVersion,
                      MicroCredentialVersion.id == Offering.mc_version_id)
                .where(in_year)):
            outcomes = parsed.get(stored)
            if outcomes is None:
                outcomes = parsed[stored] = _outcomes(_json(stored))
            learner_rows[(offering_id, person_id)] = figures.LearnerFact(
                offering_mc[offering_id], status, via, reevaluations, outcomes)
        for context_id, person_id in conn.execute(
                select(Membership.context_id, Membership.person_id)
                .join(Offering, Offering.context_id == Membership.context_id)
                .join(MicroCredentialVersion,
                      MicroCredentialVersion.id == Offering.mc_version_id)
                .where(in_year, Membership.role == "learner", Membership.active.is_(True))
                .distinct()):
            for offering_id in contexts[context_id]:
                if (offering_id, person_id) not in learner_rows:
                    learner_rows[(offering_id, person_id)] = figures.LearnerFact(
                        offering_mc[offering_id], None)

    # Credentials issued or revoked in the year, and whether the learner accepted / shared
    # (the learner page's actions in the audit log).
    issued = _in(start, end, Credential.issued_at)
    revoked = _in(start, end, Credential.revoked_at)

    def recorded(action: str) -> ColumnElement[bool]:
        return Credential.public_id.in_(select(AuditEntry.target).where(
            AuditEntry.action == action, AuditEntry.institution_id == institution_id))

    credentials = [
        figures.CredentialFact(mc_of[version_id], bool(in_year_), bool(accepted), bool(shared),
                               bool(revoked_))
        for version_id, in_year_, accepted, shared, revoked_ in conn.execute(
            select(Credential.mc_version_id, issued, recorded(ACCEPT_ACTION),
                   recorded(SHARE_ACTION), revoked)
            .join(MicroCredentialVersion, MicroCredentialVersion.id == Credential.mc_version_id)
            .where(own, issued | revoked))]

    ratings = []
    if offerings:
        for offering_id, skipped, stored in conn.execute(
                select(SurveyResponse.offering_id, SurveyResponse.skipped,
                       cast(SurveyResponse.ratings, Text))
                .join(Offering, Offering.id == SurveyResponse.offering_id)
                .join(MicroCredentialVersion,
                      MicroCredentialVersion.id == Offering.mc_version_id)
                .where(SurveyResponse.institution_id == institution_id, in_year)):
            values = _json(stored) or {}
            ratings.append(figures.RatingFact(
                offering_mc[offering_id], bool(skipped),
                {k: v for k, v in values.items() if k in likert}))
    follow_ups = [figures.FollowUpFact(mc_id, months,
                                       tuple(_json(stored) or ()) if answered else None)
                  for mc_id, months, stored, answered in conn.execute(
                      select(FollowUp.micro_credential_id, FollowUp.months,
                             cast(FollowUp.outcomes, Text), FollowUp.answered_at.is_not(None))
                      .where(FollowUp.institution_id == institution_id,
                             _in(start, end, FollowUp.due_at)))]
    feedback = [figures.FeedbackFact(mc_id, role, tuple(_json(themes) or ()), rating)
                for mc_id, role, themes, rating in conn.execute(
                    select(StakeholderFeedback.micro_credential_id, StakeholderFeedback.role,
                           cast(StakeholderFeedback.themes, Text), StakeholderFeedback.rating)
                    .where(StakeholderFeedback.institution_id == institution_id,
                           _in(start, end, StakeholderFeedback.created_at)))]
    return figures.YearFacts(year, _mc_facts(db, year, versions, offerings),
                             list(learner_rows.values()), credentials, ratings, follow_ups,
                             feedback, likert)


def _outcomes(stored: object) -> dict[str, bool | None]:
    """A decision's stored LO outcomes as attained (True), not (False) or not assessed (None)."""
    if not isinstance(stored, dict):
        return {}
    return {code: (None if (entry or {}).get("status") in (None, "not_yet_assessed")
                   else entry.get("status") == "attained")
            for code, entry in stored.items()}


def _mc_facts(db: Session, year: int, versions: dict[int, MicroCredentialVersion],
              offerings: Sequence[Row[int, int, int]]) -> list[figures.McFacts]:
    start, end = year_bounds(year)
    version_ids = list(versions)  # the institution's, a few hundred at most
    heads: dict[int, MicroCredentialVersion] = {}
    for version in sorted(versions.values(), key=lambda v: v.version):
        heads[version.micro_credential_id] = version
    offered: dict[int, int] = defaultdict(int)
    offered_versions: dict[int, set[int]] = defaultdict(set)
    for o in offerings:
        mc_id = versions[o.mc_version_id].micro_credential_id
        offered[mc_id] += 1
        offered_versions[mc_id].add(o.mc_version_id)
    events = defaultdict(set)
    for version_id, action in db.execute(
            select(ApprovalEvent.version_id, ApprovalEvent.action)
            .where(ApprovalEvent.version_id.in_(version_ids),
                   ApprovalEvent.action.in_(("approve", "revalidate")),
                   ApprovalEvent.at >= start, ApprovalEvent.at < end)):
        events[versions[version_id].micro_credential_id].add(action)
    pathways = set(db.scalars(select(PathwayComponent.version_id).where(
        PathwayComponent.version_id.in_(version_ids))))
    codes: dict[int, list[str]] = defaultdict(list)
    for version_id, code in db.execute(
            select(LearningOutcome.version_id, LearningOutcome.code)
            .where(LearningOutcome.version_id.in_(version_ids))
            .order_by(LearningOutcome.version_id, LearningOutcome.position)):
        mc_id = versions[version_id].micro_credential_id
        if (version_id in offered_versions[mc_id] or version_id == heads[mc_id].id) \
                and code not in codes[mc_id]:
            codes[mc_id].append(code)
    result = []
    for mc_id, head in heads.items():
        if head.status == "draft" and not offered[mc_id] and head.version == 1:
            continue  # a first draft is not yet part of the catalogue
        due = [v.revalidation_due for v in versions.values()
               if v.micro_credential_id == mc_id and v.revalidation_due is not None]
        result.append(figures.McFacts(
            mc_id=mc_id, code=head.micro_credential.code, title=head.title, kind=head.kind,
            participation_form=head.participation_form or "", status=head.status,
            eqf_level=head.eqf_level, ects=None if head.ects is None else str(head.ects),
            workload_hours=str(head.workload_hours), pathway=head.id in pathways,
            offerings=offered[mc_id], outcome_codes=tuple(codes[mc_id]),
            approved_in_year="approve" in events[mc_id],
            revalidation_due_in_year=any(start <= d < end for d in due),
            revalidated_in_year="revalidate" in events[mc_id]))
    return result


def _texts(rows: list[tuple[int, str]], shown_mcs: set[int]) -> dict:
    """Free text per micro-credential where its answers are shown; the rest pooled. Sorted,
    never in the order given, so nothing can be matched to a person or a moment."""
    per_mc: dict[int, list[str]] = defaultdict(list)
    pooled: list[str] = []
    for mc_id, text in rows:
        if not text:
            continue
        (per_mc[mc_id] if mc_id in shown_mcs else pooled).append(text)
    return {"per_mc": {k: sorted(v) for k, v in per_mc.items()}, "pooled": sorted(pooled)}


def build_report(db: Session, settings: Settings, *, institution_id: int, year: int) -> Report:
    """The Annual Quality Assurance Report of one institution for one calendar year."""
    institution = db.get(Institution, institution_id)
    if institution is None:
        raise NotFound("No such institution.")
    min_cell = max(1, settings.report_min_cell)
    versions = _versions(db, institution_id)
    questions = questions_of(db, institution_id)
    likert = tuple(q.code for q in questions if q.kind == LIKERT)
    current = figures.year_figures(_year_facts(db, institution_id, year, versions, likert),
                                   min_cell)
    previous = figures.year_figures(_year_facts(db, institution_id, year - 1, versions, likert),
                                    min_cell)
    changes = figures.year_on_year(current, previous)
    start, end = year_bounds(year)
    shown_answers = {m for m, f in current["per_mc"].items()
                     if not figures.is_suppressed(f["satisfaction"]["responses"])}
    shown_feedback = {m for m, f in current["per_mc"].items()
                      if not figures.is_suppressed(f["stakeholders"]["n"])}
    comments = _texts(list(db.execute(select(SurveyComment.micro_credential_id,
                                             SurveyComment.text)
                                      .where(SurveyComment.institution_id == institution_id,
                                             SurveyComment.year == year))),
                      shown_answers)
    feedback_texts = _texts(list(db.execute(
        select(StakeholderFeedback.micro_credential_id, StakeholderFeedback.text)
        .where(StakeholderFeedback.institution_id == institution_id,
               StakeholderFeedback.created_at >= start,
               StakeholderFeedback.created_at < end))), shown_feedback)
    if figures.is_suppressed(current["overall"]["satisfaction"]["responses"]):
        comments = {"per_mc": {}, "pooled": []}  # too few answers in all to show any text
    if figures.is_suppressed(current["overall"]["stakeholders"]["n"]):
        feedback_texts = {"per_mc": {}, "pooled": []}
    reflections: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for mc_id, worked, change in db.execute(
            select(MicroCredentialVersion.micro_credential_id, InstructorReflection.worked,
                   InstructorReflection.change)
            .join(Offering, Offering.id == InstructorReflection.offering_id)
            .join(MicroCredentialVersion, MicroCredentialVersion.id == Offering.mc_version_id)
            .where(InstructorReflection.institution_id == institution_id,
                   MicroCredentialVersion.institution_id == institution_id,
                   offering_moment >= start, offering_moment < end)):
        reflections[mc_id].append((worked, change))
    actions = [{"id": a.id, "year": a.year, "micro_credential_id": a.micro_credential_id,
                "finding": a.finding, "action": a.action, "owner": a.owner,
                "due_on": a.due_on.date().isoformat(), "status": a.status, "result": a.result,
                "carried_over": a.year < year}
               for a in plan.actions_for_year(db, institution_id, year)]
    return Report(
        institution=institution.name, institution_id=institution_id, year=year,
        min_cell=min_cell, figures=current,
        previous=previous, changes=changes, questions=questions, comments=comments,
        reflections={k: sorted(v) for k, v in reflections.items()},
        feedback_texts=feedback_texts, actions=actions)


def report_json(report: Report) -> dict:
    """The machine-readable report (JSON export and golden tests)."""
    marker = {"suppressed": True, "below": report.min_cell}
    codes = {m: f["mc"]["code"] for m, f in report.figures["per_mc"].items()}
    return figures.to_jsonable({
        "institution": report.institution,
        "year": report.year,
        "min_cell": report.min_cell,
        "dimensions": {name: list(sections) for name, sections in figures.DIMENSIONS},
        "questions": [{"code": q.code, "kind": q.kind, "text": dict(q.text)}
                      for q in report.questions],
        "overall": report.figures["overall"],
        "micro_credentials": [report.figures["per_mc"][m] for m in report.figures["per_mc"]],
        "year_on_year": {"previous_year": report.changes["previous_year"],
                         "overall": report.changes["overall"],
                         "per_mc": {codes[m]: c for m, c in
                                    report.changes["per_mc"].items()}},
        "comments": {"per_mc": {codes.get(m, str(m)): t for m, t in
                                report.comments["per_mc"].items()},
                     "pooled": report.comments["pooled"]},
        "stakeholder_texts": {"per_mc": {codes.get(m, str(m)): t for m, t in
                                         report.feedback_texts["per_mc"].items()},
                              "pooled": report.feedback_texts["pooled"]},
        "reflections": {codes.get(m, str(m)): [{"worked": w, "change": c} for w, c in v]
                        for m, v in report.reflections.items()},
        "actions": [dict(a, micro_credential=codes.get(a["micro_credential_id"]))
                    for a in report.actions],
    }, marker)

