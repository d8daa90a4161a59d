"""Read-side queries for the pages: a fixed handful of queries per page, scoped by the actor.

Each helper takes the request's `Actor` and filters by its platform (and context or person),
so a page can never show another platform's, course's or learner's rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from lti_tool.catalogue.offerings import course_offerings
from lti_tool.domain import catalogue as catalogue_rules
from lti_tool.domain import decisions as flow
from lti_tool.domain.actors import Actor
from lti_tool.errors import NotFound
from lti_tool.grades.reevaluation import RequestWindow, request_window
from lti_tool.grades.sync import LEASE, lease_holder, progress_of
from lti_tool.grades.sync.progress import WAITING, is_running
from lti_tool.store.db import utcnow
from lti_tool.store.models.badges import Credential, HeldPass
from lti_tool.store.models.catalogue import LearningOutcome, MicroCredentialVersion, Offering
from lti_tool.store.models.core import (
    AuditEntry,
    Context,
    Membership,
    Person,
    Platform,
    ResourceLink,
)
from lti_tool.store.models.evaluation import Decision, ReevaluationRequest
from lti_tool.store.models.grades import SyncRun


def course_of(db: Session, actor: Actor) -> Context | None:
    """The course the launch came from (None for a launch without a context)."""
    if actor.context_id is None:
        return None
    return db.scalar(
        select(Context).where(Context.id == actor.context_id,
                              Context.platform_id == actor.platform_id)
    )


def launched_offering_id(db: Session, actor: Actor) -> int | None:
    """The offering the launched link stands for (`custom.offering_id` of a placed link)."""
    if actor.resource_link_id is None:
        return None
    custom = db.scalar(select(ResourceLink.custom).where(
        ResourceLink.id == actor.resource_link_id, ResourceLink.context_id == actor.context_id))
    raw = (custom or {}).get("offering_id")
    try:
        return int(raw) if isinstance(raw, int | str) else None
    except ValueError:
        return None


def platform_with_deployments(db: Session, actor: Actor) -> Platform | None:
    """The actor's own registration with its deployments (one query each)."""
    return db.scalar(
        select(Platform).where(Platform.id == actor.platform_id)
        .options(selectinload(Platform.deployments))
    )


def audit_page(db: Session, actor: Actor, *, query: str, page: int, size: int
               ) -> list[AuditEntry]:
    """Newest first; `query` matches the action, target or who did it."""
    stmt = select(AuditEntry).where(AuditEntry.institution_id == actor.institution_id)
    if query:
        like = f"%{query.lower()}%"
        stmt = stmt.where(or_(
            func.lower(AuditEntry.action).like(like),
            func.lower(AuditEntry.target).like(like),
            func.lower(AuditEntry.actor_label).like(like),
        ))
    stmt = stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    return list(db.scalars(stmt.offset((page - 1) * size).limit(size + 1)))


# --- Catalogue ------------------------------------------------------------------------------

REVALIDATION_NOTICE = timedelta(days=catalogue_rules.REVALIDATION_NOTICE_DAYS)


@dataclass(frozen=True)
class Catalogue:
    """The Office's view of its micro-credentials: newest version of each, and the queues."""

    heads: list[MicroCredentialVersion]
    in_review: list[MicroCredentialVersion]
    revalidation_due: list[MicroCredentialVersion]


def catalogue_of(db: Session, actor: Actor, *, now: datetime | None = None) -> Catalogue:
    """One query over the institution's versions; the newest per micro-credential is its head."""
    now = now or utcnow()
    versions = db.scalars(
        select(MicroCredentialVersion)
        .where(MicroCredentialVersion.institution_id == actor.institution_id)
        .options(selectinload(MicroCredentialVersion.micro_credential))
        .order_by(MicroCredentialVersion.micro_credential_id, MicroCredentialVersion.version)
    ).all()
    heads_by_mc: dict[int, MicroCredentialVersion] = {}
    for version in versions:
        heads_by_mc[version.micro_credential_id] = version
    heads = sorted(heads_by_mc.values(), key=lambda v: v.micro_credential.code.lower())
    due = [(v.revalidation_due, v) for v in heads
           if v.status in catalogue_rules.REVALIDATABLE_STATUSES and v.revalidation_due is not None
           and v.revalidation_due <= now + REVALIDATION_NOTICE]
    return Catalogue(
        heads=heads,
        in_review=[v for v in heads if v.status == "in_review"],
        revalidation_due=[v for _due, v in sorted(due, key=lambda pair: pair[0])],
    )


def offerings_of(db: Session, actor: Actor) -> list[Offering]:
    """The course's offerings with their version and outcomes (rubrics) loaded up front."""
    return course_offerings(
        db, actor,
        selectinload(Offering.mc_version).selectinload(MicroCredentialVersion.outcomes),
        selectinload(Offering.mc_version).selectinload(MicroCredentialVersion.micro_credential))


# --- Learner progress -----------------------------------------------------------------------

NOT_ASSESSED = "not_yet_assessed"
REQUEST_POLICIES = ("instructor", "learner_request")
ACCEPT_ACTION = "credential.accepted"
SHARE_ACTION = "credential.shared"


@dataclass(slots=True)
class OutcomeProgress:
    """One LO for one learner: where they are, the threshold, and what is still missing.

    Not frozen: a 1,000 x 10 overview builds ten thousand of these per request.
    """

    outcome: LearningOutcome
    status: str  # attained | not_attained | not_yet_assessed
    level: dict | None  # the rubric level reached ({code, label, ...}), None when unmarked
    percent: Decimal | None
    threshold: dict  # the threshold rubric level
    carried_over: bool = False
    never_graded: bool = False  # no source has a mark: the percent is the 0 of a closed window

    @property
    def attained(self) -> bool:
        return self.status == "attained"

    @property
    def points_missing(self) -> Decimal | None:
        """Percentage points still needed to reach the threshold (None when unknown)."""
        if self.attained or self.percent is None:
            return None
        return max(Decimal(0), Decimal(str(self.threshold["lower_bound"])) - self.percent)


@dataclass(frozen=True)
class LearnerOffering:
    """Everything the learner page shows for one micro-credential of the course."""

    offering: Offering
    decision: Decision | None
    outcomes: list[OutcomeProgress]
    reevaluation_closes_at: datetime | None
    request: ReevaluationRequest | None
    credential: Credential | None = None
    accepted_at: datetime | None = None
    held: HeldPass | None = None  # passed while the micro-credential was not approved
    # Whether and until when the learner may ask (the rule the request itself checks).
    request_window: RequestWindow | None = None

    @property
    def version(self) -> MicroCredentialVersion:
        return self.offering.mc_version

    @property
    def status(self) -> str:
        return self.decision.status if self.decision else "in_progress"

    @property
    def may_request_reevaluation(self) -> bool:
        """The domain's rule allows a request now (failed, no re-evaluation yet, not asked,
        before the deadline) and the policy takes requests (`learner_request` grants at once,
        `instructor` sends it to the instructor; `automatic` needs no request)."""
        return (self.offering.reevaluation_policy in REQUEST_POLICIES
                and self.request_window is not None and self.request_window.may_request)

    @property
    def request_closed(self) -> str | None:
        """Why asking is no longer possible when only the deadline stands in the way."""
        window = self.request_window
        if (self.offering.reevaluation_policy in REQUEST_POLICIES and window is not None
                and self.request is None and window.deadline is not None
                and self.decision is not None and self.decision.status == flow.FAILED
                and self.decision.reevaluations_used < flow.MAX_REEVALUATIONS
                and not window.may_request):
            return window.refusal
        return None

    def reevaluation_would_close(self, now: datetime) -> datetime:
        """When a re-evaluation granted now would close (the offering's window length)."""
        return now + timedelta(days=self.offering.reevaluation_window_days)


def _percent(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


@dataclass(frozen=True)
class RubricIndex:
    """An LO's levels by code and its threshold level, looked up once per page, not per cell."""

    outcome: LearningOutcome
    levels: dict[str, dict]
    threshold: dict

    @classmethod
    def of(cls, outcome: LearningOutcome) -> RubricIndex:
        levels = {lv.get("code"): lv for lv in outcome.levels}
        threshold = levels.get(outcome.threshold) or {
            "code": outcome.threshold, "label": outcome.threshold, "lower_bound": "0"}
        return cls(outcome, levels, threshold)


def outcome_progress(rubric: RubricIndex, stored: dict | None) -> OutcomeProgress:
    """Read one LO's entry of `Decision.outcomes` against the LO's rubric."""
    stored = stored or {}
    code = stored.get("level")
    level = rubric.levels.get(code) if isinstance(code, str) and code else None
    return OutcomeProgress(
        outcome=rubric.outcome,
        status=stored.get("status") or (NOT_ASSESSED if level is None else "not_attained"),
        level=level,
        percent=_percent(stored.get("percent")),
        threshold=rubric.threshold,
        carried_over=bool(stored.get("carried_over")),
        never_graded=bool(stored.get("inputs")) and all(
            i.get("percent") is None for i in stored["inputs"]),
    )


def learner_progress(db: Session, actor: Actor) -> list[LearnerOffering]:
    """The actor's own decisions, requests and credentials in the course's offerings.

    A fixed handful of queries, every one filtered by the actor's person and platform.
    """
    offerings = offerings_of(db, actor)
    if not offerings:
        return []
    decisions = {
        d.offering_id: d for d in db.scalars(
            select(Decision)
            .where(Decision.person_id == actor.person_id,
                   Decision.platform_id == actor.platform_id,
                   Decision.offering_id.in_([o.id for o in offerings]))
            .options(selectinload(Decision.attempts))
        )
    }
    requests = {
        r.decision_id: r for r in db.scalars(
            select(ReevaluationRequest).where(
                ReevaluationRequest.person_id == actor.person_id,
                ReevaluationRequest.decision_id.in_([d.id for d in decisions.values()]))
        )
    } if decisions else {}
    credentials = {
        c.mc_version_id: c for c in db.scalars(
            select(Credential).where(
                Credential.person_id == actor.person_id,
                Credential.platform_id == actor.platform_id,
                Credential.mc_version_id.in_([o.mc_version_id for o in offerings])))
    }
    accepted = accepted_credentials(db, actor, [c.public_id for c in credentials.values()])
    held = {h.mc_version_id: h for h in db.scalars(select(HeldPass).where(
        HeldPass.person_id == actor.person_id, HeldPass.platform_id == actor.platform_id,
        HeldPass.released_at.is_(None),
        HeldPass.mc_version_id.in_([o.mc_version_id for o in offerings])))}
    result = []
    for offering in offerings:
        decision = decisions.get(offering.id)
        credential = credentials.get(offering.mc_version_id)
        stored = decision.outcomes if decision else {}
        second = next((a for a in decision.attempts if a.number == 2), None) if decision else None
        result.append(LearnerOffering(
            offering=offering,
            decision=decision,
            outcomes=[outcome_progress(RubricIndex.of(o), stored.get(o.code))
                      for o in offering.mc_version.outcomes],
            reevaluation_closes_at=second.closes_at if second else None,
            request=requests.get(decision.id) if decision else None,
            credential=credential,
            accepted_at=accepted.get(credential.public_id) if credential else None,
            held=held.get(offering.mc_version_id) if credential is None else None,
            request_window=request_window(offering, decision,
                                          already_requested=decision.id in requests)
            if decision else None,
        ))
    return result


def accepted_credentials(db: Session, actor: Actor, public_ids: list[str]
                         ) -> dict[str, datetime]:
    """When the actor accepted each of these credentials (recorded in the audit log)."""
    if not public_ids:
        return {}
    rows = db.execute(
        select(AuditEntry.target, func.min(AuditEntry.at))
        .where(AuditEntry.platform_id == actor.platform_id,
               AuditEntry.actor_person_id == actor.person_id,
               AuditEntry.action == ACCEPT_ACTION, AuditEntry.target.in_(public_ids))
        .group_by(AuditEntry.target))
    return {target: at for target, at in rows}


@dataclass(frozen=True)
class HeldCredential:
    """A credential of the learner that no offering of this course stands for (a pathway, or
    a micro-credential taken in another course of the same institution)."""

    credential: Credential
    title: str
    accepted_at: datetime | None


def other_credentials(db: Session, actor: Actor, shown: list[LearnerOffering]
                      ) -> list[HeldCredential]:
    """The actor's credentials on this platform beyond the ones `shown` with the course."""
    skip = [item.credential.id for item in shown if item.credential is not None]
    rows = db.execute(
        select(Credential, MicroCredentialVersion.title)
        .join(MicroCredentialVersion, MicroCredentialVersion.id == Credential.mc_version_id)
        .where(Credential.person_id == actor.person_id,
               Credential.platform_id == actor.platform_id, Credential.id.not_in(skip))
        .order_by(Credential.issued_at.desc())).all()
    accepted = accepted_credentials(db, actor, [c.public_id for c, _title in rows])
    return [HeldCredential(c, title, accepted.get(c.public_id)) for c, title in rows]


def own_credential(db: Session, actor: Actor, public_id: str) -> Credential:
    """The actor's credential with this public id; anyone else's answers 404."""
    credential = db.scalar(select(Credential).where(
        Credential.public_id == public_id, Credential.person_id == actor.person_id,
        Credential.platform_id == actor.platform_id))
    if credential is None:
        raise NotFound("You hold no credential with this id.")
    return credential


# --- Instructor overview --------------------------------------------------------------------

# The statuses partition the learners (their counts add up to the total); `eligible` is the
# part of `failed` that may still be granted the one re-evaluation.
PARTITION = ("not_assessed", "in_progress", "reevaluation", "passed", "failed")
FILTERS = ("all", *PARTITION, "eligible")
FAILED_STATUSES = ("failed", "failed_final")


@dataclass(frozen=True)
class OverviewRow:
    """One learner of the course: decision status and a cell per outcome."""

    person: Person
    decision: Decision | None
    cells: list[OutcomeProgress]

    @property
    def status(self) -> str:
        """The decision's status, or `not_assessed` while nothing has been marked."""
        if self.decision is None:
            return "not_assessed"
        if self.decision.status == "in_progress" and all(
                c.status == NOT_ASSESSED for c in self.cells):
            return "not_assessed"
        return self.decision.status

    @property
    def eligible_for_reevaluation(self) -> bool:
        """The domain rule: a re-evaluation can be granted to this learner now."""
        return self.decision is not None and flow.can(
            flow.DecisionState(self.decision.status, self.decision.reevaluations_used),
            flow.GRANT_REEVALUATION)

    def matches(self, show: str) -> bool:
        if show == "in_progress":
            return self.status == flow.IN_PROGRESS
        if show == "reevaluation":
            return self.status == flow.REEVALUATION_GRANTED
        if show == "passed":
            return self.status == "passed"
        if show == "failed":
            return self.status in FAILED_STATUSES
        if show == "eligible":
            return self.eligible_for_reevaluation
        if show == "not_assessed":
            return self.status == "not_assessed"
        return True


@dataclass(frozen=True)
class Overview:
    offering: Offering | None
    offerings: list[Offering]
    rows: list[OverviewRow]
    counts: dict[str, int]
    total: int
    requests: dict[int, ReevaluationRequest] = field(default_factory=dict)  # by person id
    credentials: dict[str, int] = field(default_factory=dict)  # count by status
    eligible: list[OverviewRow] = field(default_factory=list)  # whatever the filter shows

    @property
    def badges_issued(self) -> int:
        """Every credential issued for the offering, whatever its status now (a revoked one
        was issued too)."""
        return sum(self.credentials.values())


def _sort_key(sort: str, outcome_codes: list[str]) -> Callable[[OverviewRow], tuple]:
    """Order rows by a column: name (family name first), status, or an outcome's percent
    (unmarked cells last)."""
    if sort == "status":
        return lambda r: (r.status, r.person.name.lower())
    if sort in outcome_codes:
        index = outcome_codes.index(sort)
        return lambda r: (r.cells[index].percent is None, r.cells[index].percent or 0,
                          r.person.name.lower())
    return lambda r: (r.person.family_name.lower(), r.person.name.lower())


def course_overview(db: Session, actor: Actor, *, offering_id: int | None, show: str = "all",
                    sort: str = "name", descending: bool = False) -> Overview:
    """Learners x outcomes of one offering of the actor's course, in a fixed number of queries."""
    offerings = offerings_of(db, actor)
    if offering_id:
        offering = next((o for o in offerings if o.id == offering_id), None)
        if offering is None:
            raise NotFound("This course has no such micro-credential offering.")
    else:
        launched = launched_offering_id(db, actor)
        offering = next((o for o in offerings if o.id == launched), None) or \
            (offerings[0] if offerings else None)
    learners = db.scalars(
        select(Person).join(Membership, Membership.person_id == Person.id)
        .where(Membership.context_id == actor.context_id, Membership.role == "learner",
               Membership.active.is_(True), Person.platform_id == actor.platform_id)
    ).all() if actor.context_id is not None else []
    decisions: dict[int, Decision] = {}
    rubrics: list[RubricIndex] = []
    if offering is not None:
        rubrics = [RubricIndex.of(o) for o in offering.mc_version.outcomes]
        decisions = {d.person_id: d for d in db.scalars(
            select(Decision).where(Decision.offering_id == offering.id,
                                   Decision.platform_id == actor.platform_id))}
    rows = []
    for person in learners:
        decision = decisions.get(person.id)
        stored = decision.outcomes if decision else {}
        rows.append(OverviewRow(person, decision, [
            outcome_progress(r, stored.get(r.outcome.code)) for r in rubrics]))
    counts = {name: sum(1 for r in rows if r.matches(name)) for name in FILTERS}
    shown = [r for r in rows if r.matches(show if show in FILTERS else "all")]
    shown.sort(key=_sort_key(sort, [r.outcome.code for r in rubrics]), reverse=descending)
    requests: dict[int, ReevaluationRequest] = {}
    credentials: dict[str, int] = {}
    if offering is not None:
        requests = {r.person_id: r for r in db.scalars(
            select(ReevaluationRequest)
            .join(Decision, Decision.id == ReevaluationRequest.decision_id)
            .where(Decision.offering_id == offering.id, ReevaluationRequest.status == "pending"))}
        credentials = dict(db.execute(
            select(Credential.status, func.count()).where(
                Credential.offering_id == offering.id,
                Credential.platform_id == actor.platform_id)
            .group_by(Credential.status)).all())
    eligible = sorted((r for r in rows if r.eligible_for_reevaluation),
                      key=_sort_key("name", []))
    return Overview(offering, offerings, shown, counts, len(rows), requests, credentials,
                    eligible)


@dataclass(frozen=True)
class SyncHealth:
    """The course's gradebook sync as an instructor needs it: when, what, and what went wrong."""

    last: SyncRun | None
    last_success: SyncRun | None
    running: bool = False  # a sync (often the first one, after this launch) is under way
    waiting: bool = False  # a requested sync's job waits for a worker


def sync_health(db: Session, actor: Actor, *, recent: int = 20) -> SyncHealth:
    if actor.context_id is None:
        return SyncHealth(None, None)
    runs = db.scalars(select(SyncRun).where(SyncRun.context_id == actor.context_id)
                      .order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(recent)).all()
    last = runs[0] if runs else None
    live_state = (progress_of(db, actor.context_id) or {}).get("state")
    running = is_running(last.status if last else None, last.started_at if last else None,
                         lease_held=lease_holder(db, actor.context_id) is not None,
                         live_state=live_state, now=utcnow(), lease=LEASE)
    return SyncHealth(last, next((r for r in runs if r.status == "succeeded"), None), running,
                      waiting=not running and live_state == WAITING)


# --- Office: issued credentials -------------------------------------------------------------


@dataclass(frozen=True)
class IssuedSummary:
    counts: dict[str, int]
    recent: list[tuple[Credential, str, str]]  # (credential, holder name, MC title)


def issued_summary(db: Session, actor: Actor, *, recent: int = 10) -> IssuedSummary:
    """Counts by status and the latest credentials of the platform, in two queries."""
    counts = dict(db.execute(
        select(Credential.status, func.count()).where(Credential.platform_id == actor.platform_id)
        .group_by(Credential.status)).all())
    rows = db.execute(
        select(Credential, Person.name, MicroCredentialVersion.title)
        .join(Person, Person.id == Credential.person_id)
        .join(MicroCredentialVersion, MicroCredentialVersion.id == Credential.mc_version_id)
        .where(Credential.platform_id == actor.platform_id)
        .order_by(Credential.issued_at.desc(), Credential.id.desc()).limit(recent)).all()
    return IssuedSummary(counts, [(c, name, title) for c, name, title in rows])
