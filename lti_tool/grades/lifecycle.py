"""Data lifecycle: retention purge, a learner's own data, and erasure requests (KVKK, GDPR).

- `purge_expired` (daily job and `lti-tool evidence purge`): removes each record kind once it
  is past its retention period (settings `retention_*_days`; 0 keeps a kind for ever) and writes
  one signed purge record per chain that says what was removed, when and why. Evidence records
  lose their payload only: their content hash stays in the chain, so `evidence verify` still
  passes and lists the purge.
- `learner_data`: everything the tool holds about one learner, as JSON (their page offers it).
- `erase_person` (`lti-tool people erase PERSON_ID --reason`): removes personal data that is
  not under a retention duty, replaces the person's identifiers with a keyed pseudonym
  (HMAC-SHA256 with a secret kept outside the database), keeps issued credentials verifiable,
  and records in the chain and the audit log what was kept and why.

The legal basis of each kept kind is in `KEPT_BECAUSE` (README "Evidence archive and data
lifecycle" explains the fields).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from lti_tool.domain.evidence import compact_ranges
from lti_tool.errors import BadRequest, NotFound
from lti_tool.grades.evidence import append_evidence, decision_json, learner_evidence, seal
from lti_tool.secrets import read_or_create_secret
from lti_tool.settings import Settings
from lti_tool.store.db import changed_rows, referenced, utcnow
from lti_tool.store.models.badges import Credential, HeldPass
from lti_tool.store.models.core import (
    AuditEntry,
    Context,
    LoginState,
    Membership,
    Person,
    Platform,
    UsedNonce,
    WebSession,
)
from lti_tool.store.models.evaluation import (
    Decision,
    EvidenceRecord,
    ReevaluationRequest,
    ToolRubricScore,
)
from lti_tool.store.models.grades import GradeItem, LmsRubricAssessment, LmsRubricCriterion, Score

KEEP_FOREVER_EVENTS = ("purge", "erasure")  # they hold no personal data and explain gaps


@dataclass(frozen=True)
class LegalBasis:
    """Why a kind of data is kept: the purpose and the provisions that allow keeping it."""

    purpose: str
    kvkk: str
    gdpr: str

    def as_dict(self) -> dict:
        return {"purpose": self.purpose, "kvkk": self.kvkk, "gdpr": self.gdpr}


KEPT_BECAUSE = {
    "decisions": LegalBasis(
        "the result of an assessment the institution must be able to show (directive Art. 9/4: "
        "measurement results and evidence are archived under the relevant legislation)",
        "Law 6698 Art. 5/2(a) and (ç): required by law / the controller's legal obligation; "
        "Art. 5/2(e): establishing or defending a right",
        "Art. 6(1)(c) legal obligation, 6(1)(e) public task; Art. 17(3)(b) and (e)"),
    "evidence_records": LegalBasis(
        "the signed, append-only evidence archive of those decisions; kept under the keyed "
        "pseudonym (internal ids only, the person row no longer names the learner)",
        "Law 6698 Art. 5/2(ç) and (e); Art. 7 with the Regulation on Erasure, Destruction or "
        "Anonymisation: deleted at the end of the retention period",
        "Art. 17(3)(b) and (e); Art. 89(1) safeguards: pseudonymisation"),
    "credentials": LegalBasis(
        "issued credentials stay verifiable and revocable: the holder may still present them, "
        "and a verifier must be able to check them (the signed document cannot be changed)",
        "Law 6698 Art. 5/2(c) and (e): the learner's own award; establishing a right",
        "Art. 6(1)(b) and (e); Art. 17(3)(b) and (e)"),
    "audit_entries": LegalBasis(
        "who did what (accountability of the Office and instructors)",
        "Law 6698 Art. 12: data security obligations; Art. 5/2(ç) and (f)",
        "Art. 5(2) accountability, Art. 32 security; Art. 6(1)(c) and (f)"),
    "held_passes": LegalBasis(
        "a pass awaiting its credential (issued after revalidation of the micro-credential)",
        "Law 6698 Art. 5/2(c) and (e)", "Art. 6(1)(b); Art. 17(3)(e)"),
}


def retention_days(settings: Settings) -> dict[str, int]:
    """Retention period in days per purged kind (0 = kept for ever)."""
    return {"evidence_payloads": settings.retention_evidence_days,
            "scores": settings.retention_scores_days,
            "audit_entries": settings.retention_audit_days,
            "sessions": settings.retention_sessions_days}


SETTING_OF = {"evidence_payloads": "LTI_TOOL_RETENTION_EVIDENCE_DAYS",
              "scores": "LTI_TOOL_RETENTION_SCORES_DAYS",
              "audit_entries": "LTI_TOOL_RETENTION_AUDIT_DAYS",
              "sessions": "LTI_TOOL_RETENTION_SESSIONS_DAYS"}


# --- retention ---------------------------------------------------------------------------------

def _count_by_platform(db: Session, query) -> dict[int, int]:
    return {pid: n for pid, n in db.execute(query) if pid is not None and n}


def _score_ids(db: Session, platform_id: int, cutoff: datetime) -> list[int]:
    return list(db.scalars(select(Score.id).join(GradeItem, Score.grade_item_id == GradeItem.id)
                           .join(Context, GradeItem.context_id == Context.id)
                           .where(Context.platform_id == platform_id,
                                  Score.fetched_at < cutoff)))


def purge_expired(db: Session, settings: Settings,
                  now: datetime | None = None) -> dict[int, dict[str, int]]:
    """Remove what is past its retention period; one signed purge record per chain.

    Returns {platform_id: {kind: count}} for the platforms where something was removed."""
    now = now or utcnow()
    days = retention_days(settings)
    cutoffs = {kind: now - timedelta(days=n) for kind, n in days.items() if n > 0}
    summary: dict[int, dict[str, int]] = {}
    evidence_seqs: dict[int, list[int]] = {}
    if "evidence_payloads" in cutoffs:
        rows = db.execute(select(EvidenceRecord.platform_id, EvidenceRecord.seq).where(
            EvidenceRecord.created_at < cutoffs["evidence_payloads"],
            EvidenceRecord.payload.is_not(None),
            EvidenceRecord.event.not_in(KEEP_FOREVER_EVENTS)))
        for pid, seq in rows:
            evidence_seqs.setdefault(pid, []).append(seq)
    score_ids: dict[int, list[int]] = {}
    if "scores" in cutoffs:
        for pid in db.scalars(select(Platform.id)):
            ids = _score_ids(db, pid, cutoffs["scores"])
            if ids:
                score_ids[pid] = ids
    audit = _count_by_platform(db, select(AuditEntry.platform_id, func.count()).where(
        AuditEntry.at < cutoffs["audit_entries"]).group_by(AuditEntry.platform_id)) \
        if "audit_entries" in cutoffs else {}
    session_models = (WebSession, LoginState, UsedNonce)
    sessions: dict[int, int] = {}
    if "sessions" in cutoffs:
        for model in session_models:
            for pid, n in _count_by_platform(db, select(model.platform_id, func.count()).where(
                    model.expires_at < cutoffs["sessions"]).group_by(model.platform_id)).items():
                sessions[pid] = sessions.get(pid, 0) + n
    platforms = set(evidence_seqs) | set(score_ids) | set(audit) | set(sessions)
    for pid in sorted(platforms):
        kinds = {k: v for k, v in {"evidence_payloads": len(evidence_seqs.get(pid, [])),
                                   "scores": len(score_ids.get(pid, [])),
                                   "audit_entries": audit.get(pid, 0),
                                   "sessions": sessions.get(pid, 0)}.items() if v}
        ranges = compact_ranges(evidence_seqs.get(pid, []))
        record = append_evidence(db, platform_id=pid, event="purge", payload={
            "at": now, "kinds": kinds, "records": ranges,
            "reason": "; ".join(f"{kind}: older than {days[kind]} days (before "
                                f"{cutoffs[kind]:%Y-%m-%d}, setting {SETTING_OF[kind]})"
                                for kind in kinds),
            "retention_days": {kind: days[kind] for kind in kinds},
            "legal_basis": "retention period over: Law 6698 Art. 7 and the Regulation on "
                           "Erasure, Destruction or Anonymisation (periodic destruction); "
                           "GDPR Art. 5(1)(e) storage limitation",
        })
        for low, high in ranges:
            db.execute(update(EvidenceRecord).where(
                EvidenceRecord.platform_id == pid, EvidenceRecord.seq.between(low, high),
                EvidenceRecord.payload.is_not(None))
                .values(payload=None, purged_at=now, purged_by=record.seq)
                .execution_options(synchronize_session=False))
        if pid in score_ids:
            db.execute(delete(Score).where(Score.id.in_(score_ids[pid]))
                       .execution_options(synchronize_session=False))
        if pid in audit:
            db.execute(delete(AuditEntry).where(AuditEntry.platform_id == pid,
                                                AuditEntry.at < cutoffs["audit_entries"])
                       .execution_options(synchronize_session=False))
        if pid in sessions:
            for model in session_models:
                db.execute(delete(model).where(model.platform_id == pid,
                                               model.expires_at < cutoffs["sessions"])
                           .execution_options(synchronize_session=False))
        seal(db, settings, pid, "purge")
        summary[pid] = kinds
    db.expire_all()
    return summary


# --- a learner's own data ------------------------------------------------------------------------

def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def learner_data(db: Session, settings: Settings, platform_id: int, person_id: int) -> dict:
    """Everything the tool holds about one learner (their right of access, KVKK Art. 11,
    GDPR Art. 15 and 20), with the retention period of each kind."""
    person = db.get(Person, person_id)
    if person is None or person.platform_id != platform_id:
        raise NotFound("No such person on this platform.")
    platform = db.get(Platform, platform_id)
    memberships = db.execute(select(Membership, Context).join(Context, Membership.context_id ==
                                                               Context.id)
                             .where(Membership.person_id == person_id)
                             .order_by(Membership.id)).all()
    scores = db.execute(select(Score, GradeItem).join(GradeItem, Score.grade_item_id ==
                                                       GradeItem.id)
                        .where(Score.person_id == person_id).order_by(Score.id)).all()
    rubric = db.execute(select(LmsRubricAssessment, LmsRubricCriterion)
                        .join(LmsRubricCriterion,
                              LmsRubricAssessment.criterion_id == LmsRubricCriterion.id)
                        .where(LmsRubricAssessment.person_id == person_id)).all()
    return {
        "type": "lti-tool/learner-data", "version": 1, "exported_at": _iso(utcnow()),
        "controller": {"name": settings.issuer_name, "url": settings.issuer_url,
                       "email": settings.issuer_email},
        "platform": {"issuer": platform.issuer if platform else None,
                     "client_id": platform.client_id if platform else None},
        "person": {"id": person.id, "sub": person.sub, "name": person.name,
                   "given_name": person.given_name, "family_name": person.family_name,
                   "email": person.email, "lis_person_sourcedid": person.lis_person_sourcedid,
                   "locale": person.locale, "updated_at": _iso(person.updated_at)},
        "courses": [{"context_id": c.context_id, "title": c.title, "role": m.role,
                     "active": m.active, "source": m.source} for m, c in memberships],
        "scores": [{"item": item.label, "score": None if s.score is None else str(s.score),
                    "maximum": None if s.maximum is None else str(s.maximum),
                    "lms_updated_at": _iso(s.lms_updated_at), "fetched_at": _iso(s.fetched_at)}
                   for s, item in scores],
        "lms_rubric_assessments": [{"criterion": c.description, "level_id": a.level_id,
                                    "points": None if a.points is None else str(a.points),
                                    "lms_updated_at": _iso(a.lms_updated_at)}
                                   for a, c in rubric],
        "tool_rubric_scores": [{"offering_id": t.offering_id, "outcome": t.outcome_code,
                                "attempt": t.attempt_no, "level": t.level_code,
                                "comment": t.comment, "scored_at": _iso(t.scored_at)}
                               for t in db.scalars(select(ToolRubricScore).where(
                                   ToolRubricScore.person_id == person_id))],
        "decisions": [decision_json(d) for d in db.scalars(
            select(Decision).where(Decision.person_id == person_id).order_by(Decision.id))],
        "reevaluation_requests": [{"decision_id": r.decision_id, "reason": r.reason,
                                   "status": r.status, "requested_at": _iso(r.requested_at)}
                                  for r in db.scalars(select(ReevaluationRequest).where(
                                      ReevaluationRequest.person_id == person_id))],
        "credentials": [{"id": c.public_id, "url": settings.url(f"/credentials/{c.public_id}"),
                         "status": c.status, "issued_at": _iso(c.issued_at),
                         "revoked_at": _iso(c.revoked_at), "revoked_reason": c.revoked_reason,
                         "document": json.loads(c.document) if c.document else None}
                        for c in db.scalars(select(Credential).where(
                            Credential.person_id == person_id).order_by(Credential.id))],
        "held_passes": [{"mc_version_id": h.mc_version_id, "passed_at": _iso(h.passed_at)}
                        for h in db.scalars(select(HeldPass).where(
                            HeldPass.person_id == person_id))],
        "audit_entries": [{"at": _iso(a.at), "action": a.action, "target": a.target}
                          for a in db.scalars(select(AuditEntry).where(
                              AuditEntry.actor_person_id == person_id).order_by(AuditEntry.id))],
        "evidence": learner_evidence(db, platform_id, person_id),
        "retention_days": retention_days(settings),
        "kept_because": {kind: basis.as_dict() for kind, basis in KEPT_BECAUSE.items()},
    }


# --- erasure -----------------------------------------------------------------------------------

def pseudonym_secret(settings: Settings) -> bytes:
    """The HMAC key of pseudonyms: a 0600 file outside the database, made on first use."""
    return read_or_create_secret(Path(settings.data_dir) / "secrets" / "pseudonym.key",
                                 32).encode()


def pseudonym(settings: Settings, platform: Platform, sub: str) -> str:
    """A keyed pseudonym for (registration, sub): stable, and without the secret not linkable
    to the person (the institution can recompute it for a sub it is given, e.g. a dispute)."""
    message = f"{platform.issuer}\n{platform.client_id}\n{sub}".encode()
    return "erased:" + hmac.new(pseudonym_secret(settings), message,
                                hashlib.sha256).hexdigest()[:40]


def erase_person(db: Session, settings: Settings, person_id: int, *, reason: str,
                 by: str) -> dict:
    """Carry out an erasure request; what was removed and what was kept, and why."""
    reason = reason.strip()
    if not reason:
        raise BadRequest("Give the reason of the erasure request (--reason).")
    person = db.get(Person, person_id, with_for_update=True)
    if person is None:
        raise NotFound(f"No person {person_id}.")
    if person.sub.startswith("erased:"):
        raise BadRequest(f"Person {person_id} was already erased.")
    platform = referenced(db, Platform, person.platform_id)
    now = utcnow()
    alias = pseudonym(settings, platform, person.sub)
    profile_fields = [name for name in ("name", "given_name", "family_name", "email",
                                        "lis_person_sourcedid", "locale")
                      if getattr(person, name)]
    removed = {
        "profile_fields": profile_fields,
        "memberships": changed_rows(db, delete(Membership).where(
            Membership.person_id == person_id)),
        "sessions": changed_rows(db, delete(WebSession).where(
            WebSession.person_id == person_id)),
        "scores": changed_rows(db, delete(Score).where(Score.person_id == person_id)),
        "lms_rubric_assessments": changed_rows(db, delete(LmsRubricAssessment).where(
            LmsRubricAssessment.person_id == person_id)),
        "tool_rubric_scores": changed_rows(db, delete(ToolRubricScore).where(
            ToolRubricScore.person_id == person_id)),
        "reevaluation_request_texts": changed_rows(db, update(ReevaluationRequest).where(
            ReevaluationRequest.person_id == person_id, ReevaluationRequest.reason != "")
            .values(reason="")),
    }
    person.sub, person.name, person.given_name, person.family_name = alias, "", "", ""
    person.email = person.lis_person_sourcedid = person.locale = None
    person.is_admin = False

    def count(model, *where) -> int:
        return db.scalar(select(func.count()).select_from(model).where(*where)) or 0

    held = {
        "decisions": count(Decision, Decision.person_id == person_id),
        "evidence_records": count(EvidenceRecord, EvidenceRecord.person_id == person_id),
        "credentials": count(Credential, Credential.person_id == person_id),
        "audit_entries": count(AuditEntry, AuditEntry.actor_person_id == person_id),
        "held_passes": count(HeldPass, HeldPass.person_id == person_id),
    }
    kept = [{"kind": kind, "count": n, **KEPT_BECAUSE[kind].as_dict()}
            for kind, n in held.items() if n]
    report = {"person_id": person_id, "pseudonym": alias, "at": now, "reason": reason[:2000],
              "by": by[:255], "removed": removed, "kept": kept,
              "retention_days": retention_days(settings)}
    append_evidence(db, platform_id=person.platform_id, event="erasure", payload=report,
                    person_id=person_id)
    db.add(AuditEntry(institution_id=platform.institution_id, platform_id=person.platform_id,
                      actor_label=by[:255], action="people.erase", target=f"person:{person_id}",
                      details={k: v for k, v in report.items() if k != "at"}))
    db.flush()
    seal(db, settings, person.platform_id, "erasure")
    return {**report, "at": now.isoformat()}
