"""Outcome mapping, rubric scoring, decisions and re-evaluation (instructor and learner).

The blueprint is named `grades` (the endpoints the instructor overview and learner home link
to: `grades.mapping`, `grades.score_rubrics`, `grades.finalize`, `grades.grant_reevaluation`,
`grades.request_reevaluation`). Views only translate: parse and scope the request, call
`lti_tool.grades.evaluation` (or `lti_tool.grades.evidence` for exports), commit. Every id
from a URL or form is checked against the actor's platform and course, so another course's ids
answer 404.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, Response, jsonify, redirect, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select

from lti_tool.catalogue.offerings import visible_offering
from lti_tool.domain.evaluation import GRADE_ITEM, LMS_RUBRIC, SOURCE_KINDS, TOOL_RUBRIC, SourceSpec
from lti_tool.errors import BadRequest, NotFound
from lti_tool.grades import evaluation as service
from lti_tool.grades import mapping_files
from lti_tool.grades.evidence import export_evidence
from lti_tool.store.models.catalogue import Offering
from lti_tool.store.models.core import Membership, Person
from lti_tool.store.models.evaluation import Decision, OutcomeMapping, ReviewFlag, ToolRubricScore
from lti_tool.store.models.grades import GradeItem, LmsRubricCriterion
from lti_tool.web.auth import Actor, require_actor, require_role, session_url
from lti_tool.web.db import get_db
from lti_tool.web.db import runtime as web_runtime
from lti_tool.web.jinja import status_label
from lti_tool.web.notices import flash_notice
from lti_tool.web.public import published_schema

bp = Blueprint("grades", __name__, template_folder="templates")


@bp.get(mapping_files.SCHEMA_URL_PATH)
def mapping_schema() -> Response:
    """The published JSON Schema of mapping files (`lti-tool offering map`)."""
    return published_schema(mapping_files.SCHEMA_PATH)

STAFF = ("instructor", "admin")
MAX_FIELD = 5000


# --- scoping and parsing ----------------------------------------------------------------------

def _offering(actor: Actor, offering_id: int) -> Offering:
    """The offering if the actor may see it (`catalogue.offerings`), else 404."""
    return visible_offering(get_db(), actor, offering_id)


def _learner(offering: Offering, raw: Any) -> Person:
    """A learner of the offering's course (or one with a decision in it), else 404."""
    try:
        person_id = int(raw)
    except (TypeError, ValueError) as exc:
        raise BadRequest("person_id must be a learner's id.") from exc
    db = get_db()
    person = db.get(Person, person_id)
    member = db.scalar(select(Membership.id).where(
        Membership.context_id == offering.context_id, Membership.person_id == person_id,
        Membership.role == "learner"))
    decided = db.scalar(select(Decision.id).where(Decision.offering_id == offering.id,
                                                  Decision.person_id == person_id))
    if person is None or person.platform_id != offering.platform_id or (
            member is None and decided is None):
        raise NotFound("No such learner in this course.")
    return person


def _text(name: str) -> str:
    value = request.form.get(name, "")
    if len(value) > MAX_FIELD:
        raise BadRequest(f"{name} is too long (at most {MAX_FIELD} characters).")
    return value.strip()


def _weight(raw: Any, path: str) -> Decimal:
    try:
        weight = Decimal(str(raw).strip())
    except InvalidOperation as exc:
        raise BadRequest(f"{path}: {raw!r} is not a number.") from exc
    if not weight.is_finite():
        raise BadRequest(f"{path}: must be a finite number.")
    return weight


def _parse_sources() -> tuple[dict[str, list[SourceSpec]], int]:
    """A candidate mapping from a JSON body or the mapping form, and its attempt number.

    JSON: {"attempt": 1, "outcomes": {"LO1": [{"kind", "ref", "weight"}]}}.
    Form: one field `w|<LO code>|<kind>|<ref>` per source; a blank weight leaves it unmapped.
    """
    sources: dict[str, list[SourceSpec]] = {}
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("outcomes"), dict):
            raise BadRequest("Send {\"outcomes\": {\"<LO code>\": [{\"kind\", \"ref\", "
                             "\"weight\"}]}}.")
        attempt = body.get("attempt", 1)
        for code, entries in body["outcomes"].items():
            if not isinstance(entries, list):
                raise BadRequest(f"outcomes.{code} must be a list of sources.")
            sources.setdefault(str(code), [])  # so an unknown LO code is reported
            for index, entry in enumerate(entries):
                if not isinstance(entry, dict):
                    raise BadRequest(f"outcomes.{code}[{index}] must be an object.")
                sources.setdefault(str(code), []).append(SourceSpec(
                    str(entry.get("kind", "")), str(entry.get("ref", "")),
                    _weight(entry.get("weight", 1), f"outcomes.{code}[{index}].weight")))
    else:
        attempt = request.form.get("attempt", "1")
        for name, value in request.form.items():
            if not name.startswith("w|") or not value.strip():
                continue
            parts = name.split("|", 3)
            if len(parts) != 4:
                raise BadRequest(f"{name}: not a mapping field.")
            _, code, kind, ref = parts
            sources.setdefault(code, []).append(SourceSpec(kind, ref, _weight(value, name)))
    if str(attempt) not in ("1", "2"):
        raise BadRequest("attempt must be 1 (the assessment) or 2 (the re-evaluation).")
    return sources, int(attempt)


def _wants_json() -> bool:
    return request.is_json or request.accept_mimetypes.best_match(
        ["text/html", "application/json"]) == "application/json"


def _done(message: str, endpoint: str, **values: Any):
    """After a POST: JSON for scripts, a redirect (with a notice) for forms."""
    if _wants_json():
        return jsonify({"ok": True, "message": message})
    flash_notice(message)
    return redirect(session_url(endpoint, **values), code=303)


def _summary_text(summary: service.RunSummary) -> str:
    return _("%(n)s learners evaluated: %(p)s passed, %(f)s failed.", n=summary.evaluated,
             p=summary.passed, f=summary.failed)


# --- instructor: mapping ----------------------------------------------------------------------

def _mapping_page_data(offering: Offering) -> dict:
    db = get_db()
    outcomes = service.outcomes_for(db, offering.mc_version_id)
    refs = service.known_refs(db, offering)
    items = db.scalars(select(GradeItem).where(
        GradeItem.id.in_([int(i) for i in refs[GRADE_ITEM]])).order_by(GradeItem.id)).all()
    criteria = db.scalars(select(LmsRubricCriterion).where(
        LmsRubricCriterion.id.in_([int(i) for i in refs[LMS_RUBRIC]]))
        .order_by(LmsRubricCriterion.grade_item_id, LmsRubricCriterion.sort_order)).all()
    current = {n: service.current_mapping(db, offering.id, n) for n in (1, 2)}
    weights = {n: {(code, s.kind, s.ref): s.weight
                   for code, specs in service.mapping_sources(current[n]).items() for s in specs}
               for n in (1, 2)}
    versions = db.scalars(select(OutcomeMapping).where(OutcomeMapping.offering_id == offering.id)
                          .order_by(OutcomeMapping.attempt_no, OutcomeMapping.version)).all()
    sources = [(GRADE_ITEM, str(i.id), i.label or i.external_id, i.maximum) for i in items]
    sources += [(LMS_RUBRIC, str(c.id), c.description or c.external_id, c.max_points)
                for c in criteria]
    return {"offering": offering, "outcomes": outcomes, "sources": sources,
            "weights": weights, "current": current, "versions": versions,
            "tool_rubric": TOOL_RUBRIC, "kinds": SOURCE_KINDS}


@bp.get("/instructor/offerings/<int:offering_id>/mapping")
@require_role(*STAFF)
def mapping(offering_id: int):
    """Choose the sources of each LO with weights; the preview shows every learner's levels."""
    offering = _offering(require_actor(), offering_id)
    attempt = 2 if request.args.get("attempt") == "2" else 1
    return render_template("evaluation/mapping.html", attempt=attempt,
                           **_mapping_page_data(offering))


@bp.post("/instructor/offerings/<int:offering_id>/mapping/preview")
@require_role(*STAFF)
def preview_mapping(offering_id: int):
    """Levels of every learner under the candidate mapping, on current data; saves nothing."""
    offering = _offering(require_actor(), offering_id)
    sources, attempt = _parse_sources()
    db = get_db()
    saved = _same_sources(sources, service.mapping_sources(
        service.current_mapping(db, offering.id, attempt)))
    rows = service.preview_mapping(db, offering.id, sources)
    db.rollback()
    if _wants_json():
        return jsonify({"offering_id": offering.id, "learners": rows})
    outcomes = service.outcomes_for(db, offering.mc_version_id)
    return render_template("evaluation/preview.html", rows=rows, outcomes=outcomes, saved=saved,
                           back_url=session_url("grades.mapping", offering_id=offering.id,
                                                attempt=attempt))


def _same_sources(left: dict, right: dict) -> bool:
    """Whether a candidate mapping is the saved one (the preview then says so)."""
    def norm(sources: dict) -> set:
        return {(code, s.kind, s.ref, Decimal(s.weight)) for code, specs in sources.items()
                for s in specs}
    return bool(right) and norm(left) == norm(right)


@bp.post("/instructor/offerings/<int:offering_id>/mapping")
@require_role(*STAFF)
def save_mapping(offering_id: int):
    actor = require_actor()
    offering = _offering(actor, offering_id)
    sources, attempt = _parse_sources()
    db = get_db()
    saved = service.save_mapping(db, web_runtime().settings, offering.id, sources, actor,
                                 attempt_no=attempt, note=_text("note")[:500])
    db.commit()
    return _done(_("Mapping version %(v)s saved; learners re-evaluated.", v=saved.version),
                 "grades.mapping", offering_id=offering.id, attempt=attempt)


# --- instructor: rubric scoring, decisions ----------------------------------------------------

@bp.get("/instructor/offerings/<int:offering_id>/scores")
@require_role(*STAFF)
def score_rubrics(offering_id: int):
    """Tool-side rubric scoring per learner and LO, decisions, flags and prior learning."""
    offering = _offering(require_actor(), offering_id)
    db = get_db()
    outcomes = service.outcomes_for(db, offering.mc_version_id)
    people = db.scalars(select(Person).join(Membership, Membership.person_id == Person.id).where(
        Membership.context_id == offering.context_id, Membership.role == "learner",
        Membership.active.is_(True)).order_by(Person.name, Person.id)).all()
    only = request.args.get("person_id", type=int)
    if only is not None:
        people = [p for p in people if p.id == only]
    decisions = {d.person_id: d for d in db.scalars(select(Decision).where(
        Decision.offering_id == offering.id))}
    scores = {(s.person_id, s.outcome_code, s.attempt_no): s for s in db.scalars(
        select(ToolRubricScore).where(ToolRubricScore.offering_id == offering.id))}
    flags = db.scalars(select(ReviewFlag).where(ReviewFlag.offering_id == offering.id,
                                                ReviewFlag.resolved_at.is_(None))
                       .order_by(ReviewFlag.id)).all()
    return render_template("evaluation/scores.html", offering=offering, outcomes=outcomes,
                           people=people, decisions=decisions, scores=scores, flags=flags)


@bp.post("/instructor/offerings/<int:offering_id>/scores")
@require_role(*STAFF)
def save_rubric_score(offering_id: int):
    actor = require_actor()
    offering = _offering(actor, offering_id)
    person = _learner(offering, request.form.get("person_id"))
    db = get_db()
    changes = _score_changes(offering, person.id)
    if not changes:
        raise BadRequest(_("Choose a level for at least one outcome."))
    decisions = [service.set_tool_rubric_score(db, web_runtime().settings, offering.id,
                                               person.id, code, level, actor, comment)
                 for code, (level, comment) in changes.items()]
    db.commit()
    return _done(_("Scores saved; status: %(s)s.", s=status_label(decisions[-1].status)),
                 "grades.score_rubrics", offering_id=offering.id)


def _score_changes(offering: Offering, person_id: int) -> dict[str, tuple[str, str]]:
    """The levels a scoring form sets: one learner's `level|<LO>` fields (or the single
    `outcome_code` + `level` of a script), leaving out the ones that did not change."""
    if request.form.get("outcome_code"):
        code, level = _text("outcome_code"), _text("level")
        return {code: (level, _text("comment"))} if level else {}
    given = {(s.outcome_code, s.level_code, s.comment) for s in get_db().scalars(
        select(ToolRubricScore).where(ToolRubricScore.offering_id == offering.id,
                                      ToolRubricScore.person_id == person_id))}
    changes = {}
    for name, value in request.form.items():
        if not name.startswith("level|") or not value.strip():
            continue
        code = name.split("|", 1)[1]
        comment = request.form.get(f"comment|{code}", "").strip()
        if (code, value.strip(), comment) not in given:
            changes[code] = (value.strip(), comment)
    return changes


@bp.post("/instructor/offerings/<int:offering_id>/finalize")
@require_role(*STAFF)
def finalize(offering_id: int):
    actor = require_actor()
    offering = _offering(actor, offering_id)
    db = get_db()
    summary = service.finalize(db, web_runtime().settings, offering.id, actor)
    db.commit()
    return _done(_summary_text(summary), "grades.score_rubrics", offering_id=offering.id)


def _closes_at(raw: str) -> datetime | None:
    if not raw:
        return None
    try:
        day = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise BadRequest("closes_at must be a date (YYYY-MM-DD).") from exc
    if day.tzinfo is None:
        day = datetime.combine(day.date(), time(23, 59), tzinfo=UTC) if len(raw) <= 10 \
            else day.replace(tzinfo=UTC)
    return day


@bp.post("/instructor/offerings/<int:offering_id>/reevaluation")
@require_role(*STAFF)
def grant_reevaluation(offering_id: int):
    """Grant a failed learner their one re-evaluation (a second one answers 409)."""
    actor = require_actor()
    offering = _offering(actor, offering_id)
    person = _learner(offering, request.form.get("person_id"))
    db = get_db()
    decision = service.grant_reevaluation(db, web_runtime().settings, offering.id, person.id,
                                          actor, closes_at=_closes_at(_text("closes_at")),
                                          reason=_text("reason"))
    db.commit()
    return _done(_("Re-evaluation granted to %(name)s; status: %(s)s.",
                   name=person.name or person.sub, s=status_label(decision.status)),
                 "grades.score_rubrics", offering_id=offering.id)


@bp.post("/instructor/offerings/<int:offering_id>/prior-learning")
@require_role(*STAFF)
def recognise_prior_learning(offering_id: int):
    """Record prior-learning evidence per LO; the learner passes."""
    actor = require_actor()
    offering = _offering(actor, offering_id)
    person = _learner(offering, request.form.get("person_id"))
    db = get_db()
    evidence = {}
    for outcome in service.outcomes_for(db, offering.mc_version_id):
        text, level = _text(f"evidence|{outcome.code}"), _text(f"level|{outcome.code}")
        if text or level:
            evidence[outcome.code] = {"evidence": text, **({"level": level} if level else {})}
    service.recognise_prior_learning(db, web_runtime().settings, offering.id, person.id, actor,
                                     evidence)
    db.commit()
    return _done(_("Prior learning recognised: %(name)s has passed.",
                   name=person.name or person.sub), "grades.score_rubrics",
                 offering_id=offering.id)


@bp.post("/instructor/offerings/<int:offering_id>/flags/<int:flag_id>/resolve")
@require_role(*STAFF)
def resolve_flag(offering_id: int, flag_id: int):
    actor = require_actor()
    offering = _offering(actor, offering_id)
    db = get_db()
    flag = db.get(ReviewFlag, flag_id)
    if flag is None or flag.offering_id != offering.id:
        raise NotFound("No such review flag in this offering.")
    service.resolve_flag(db, flag, actor)
    db.commit()
    return _done(_("Review flag closed."), "grades.score_rubrics", offering_id=offering.id)


@bp.get("/instructor/offerings/<int:offering_id>/learners/<int:person_id>/evidence.json")
@require_role(*STAFF)
def learner_evidence(offering_id: int, person_id: int):
    offering = _offering(require_actor(), offering_id)
    person = _learner(offering, person_id)
    return jsonify(export_evidence(get_db(), offering.platform_id, person.id, offering.id))


# --- learner ----------------------------------------------------------------------------------

@bp.post("/learner/offerings/<int:offering_id>/reevaluation-request")
@require_role("learner")
def request_reevaluation(offering_id: int):
    """A learner asks for their one re-evaluation (granted at once or sent to the instructor,
    per the offering's policy)."""
    actor = require_actor()
    offering = _offering(actor, offering_id)
    db = get_db()
    decision = service.request_reevaluation(db, web_runtime().settings, offering.id,
                                            actor.person_id, _text("reason"))
    db.commit()
    message = _("Your re-evaluation is open.") if decision.status == "reevaluation_granted" \
        else _("Your request was sent to your instructor.")
    return _done(message, "learner.home")


@bp.get("/learner/offerings/<int:offering_id>/evidence.json")
@require_role("learner")
def my_evidence(offering_id: int):
    """The learner's own archived evidence for one micro-credential, as JSON."""
    actor = require_actor()
    offering = _offering(actor, offering_id)
    return jsonify(export_evidence(get_db(), actor.platform_id, actor.person_id, offering.id))
