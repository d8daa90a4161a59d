"""Micro-credential pages: the Office's catalogue and the instructor's offering settings.

Views only translate: forms into Design Plan documents (`importexport.form_to_dict`), domain
errors into 4xx answers, and service results into pages. Every lookup is scoped by the actor's
platform (Office) or course (instructor); ids from elsewhere answer 404.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from babel import Locale
from flask import Blueprint, Response, current_app, redirect, render_template, request
from flask_babel import format_decimal, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from lti_tool.badges import issuance
from lti_tool.catalogue import importexport, labels, service
from lti_tool.catalogue.offerings import course_offerings, visible_offering
from lti_tool.domain import catalogue as rules
from lti_tool.domain.errors import FieldProblem, IllegalTransition, ValidationFailed
from lti_tool.errors import BadRequest, Conflict, NotFound
from lti_tool.grades.passback import queue_offering_passbacks
from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import MicroCredential, MicroCredentialVersion
from lti_tool.store.models.core import Person
from lti_tool.web.auth import require_actor, require_role, session_url
from lti_tool.web.db import get_db
from lti_tool.web.jinja import install_on_setup
from lti_tool.web.public import published_schema

bp = Blueprint("catalogue", __name__, url_prefix=None, template_folder="templates",
               static_folder="static", static_url_path="/static/catalogue")
bp.record_once(install_on_setup)

ACTIONS = "submit,reject,approve,revalidate,retire"
EXTRA_OUTCOME_SLOTS = 1
MIN_LEVEL_SLOTS = 4
DUE_WITHIN_DAYS = rules.REVALIDATION_NOTICE_DAYS
PARTICIPATION_LABELS = labels.PARTICIPATION
POLICY_LABELS = {
    "instructor": _l("the instructor grants it"),
    "learner_request": _l("the learner may request it"),
    "automatic": _l("granted automatically after a fail"),
}


@contextmanager
def _domain_errors() -> Iterator[None]:
    """Domain rule breaks become 409 (workflow) or 400 (values), never a 500."""
    try:
        yield
    except IllegalTransition as exc:
        raise Conflict(str(exc)) from exc
    except ValidationFailed as exc:
        raise BadRequest(_("The request has problems:"),
                         details={p.path or "request": p.message for p in exc.problems}) from exc


def _problem_map(problems: list[FieldProblem]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for problem in problems:
        found.setdefault(problem.path, []).append(problem.message)
    return found


def _see(endpoint: str, **values: object) -> BaseResponse:
    return redirect(session_url(endpoint, **values), code=303)


# --- public ---------------------------------------------------------------------------------


@bp.get(importexport.SCHEMA_URL_PATH)
def schema() -> Response:
    """The published JSON Schema of Design Plan files (for editors and `mc import`)."""
    return published_schema(importexport.SCHEMA_PATH)


# --- the Office -----------------------------------------------------------------------------


@bp.get("/admin/microcredentials")
@require_role("admin")
def office_list() -> str:
    actor = require_actor()
    db = get_db()
    now = utcnow()
    return render_template(
        "catalogue/office_list.html",
        items=service.list_micro_credentials(db, actor.platform_id),
        gaps=lambda version: labels.annex_names(service.annex_gaps_of(version)),
        due=service.due_for_revalidation(db, actor.platform_id, DUE_WITHIN_DAYS, now),
        now=now, due_days=DUE_WITHIN_DAYS)


@bp.get("/admin/microcredentials/due")
@require_role("admin")
def office_due() -> str:
    """Approved micro-credentials whose revalidation is due within 90 days, and lapsed ones."""
    actor = require_actor()
    now = utcnow()
    return render_template(
        "catalogue/office_due.html",
        due=service.due_for_revalidation(get_db(), actor.platform_id, DUE_WITHIN_DAYS, now),
        now=now, due_days=DUE_WITHIN_DAYS)


# What the error summary calls a field (the form's own labels, not the plan's paths).
FIELD_LABELS = {
    "code": _l("Code"), "title": _l("Title"), "description": _l("Description"),
    "language": _l("Language"), "kind": _l("Kind"), "image": _l("Badge image URL"),
    "purpose": _l("Purpose"), "target_group": _l("Target group"),
    "field_of_study": _l("Field of study"), "isced_f_code": _l("ISCED-F 2013 code (optional)"),
    "participation_form": _l("Form of participation"), "tqf_level": _l("TQF level (1-8)"),
    "eqf_level": _l("EQF level (1-8)"), "workload_hours": _l("Notional workload (hours)"),
    "ects": _l("ECTS equivalent (optional)"),
    "teaching_methods": _l("Teaching and learning methods (one per line)"),
    "assessment_methods": _l("Assessment methods (one per line)"),
    "content_plan": _l("Content and time plan"), "stackability": _l("Stackability"),
    "recognition": _l("Recognition"),
    "quality_assurance": _l("Quality assurance and feedback mechanisms"),
    "requires": _l("Pathway"), "outcomes": _l("Learning outcomes"),
    "statement": _l("Statement"), "domain": _l("Domain"), "required": _l("Required"),
    "rubric": _l("Analytic rubric"), "levels": _l("levels"),
    "threshold": _l("Threshold level"), "label": _l("Label"),
    "lower_bound": _l("Lower bound"), "descriptor": _l("Descriptor"),
}
_PATH_PART = re.compile(r"([a-z_]+)(?:\[(\d{1,3})\])?")


def field_label(path: str) -> str:
    """A plan path in the form's words: outcomes[0].rubric.levels[2].lower_bound becomes
    "Learning outcome 1 › Level 3 › Lower bound (%)"."""
    if not path:
        return _("Plan")
    words = []
    for name, index in _PATH_PART.findall(path):
        if name == "outcomes" and index:
            words.append(_("Learning outcome %(n)s", n=int(index) + 1))
        elif name == "levels" and index:
            words.append(_("Level %(n)s", n=int(index) + 1))
        elif name != "rubric" or path.endswith("rubric"):
            words.append(str(FIELD_LABELS.get(name, name.replace("_", " "))))
    return " › ".join(words)


# The domain's fixed problem texts (English, for the CLI and JSON) in the page's language; a
# text not listed here (one naming codes or values) is shown as the domain words it.
PROBLEM_WORDS = {
    "must not be empty": _l("must not be empty"),
    "at most two decimal places": _l("at most two decimal places"),
    "must be between 1 and 8": _l("must be between 1 and 8"),
    "name at least one method": _l("name at least one method"),
    "must be more than 0": _l("must be more than 0"),
    "must not be negative": _l("must not be negative"),
    "must be an http(s) URL": _l("must be an http(s) URL"),
    "must be an http(s) URL or a data:image URL": _l("must be an http(s) URL or a data:image URL"),
    "an ISO 3166-1 alpha-2 code such as TR or DE":
        _l("an ISO 3166-1 alpha-2 code such as TR or DE"),
    "at least one outcome must be required": _l("at least one outcome must be required"),
    "an item is listed twice": _l("an item is listed twice"),
    "not a gradebook item of this course": _l("not a gradebook item of this course"),
    "needs a time zone": _l("needs a time zone"),
    "is required": _l("is required"),
    "unknown field": _l("unknown field"),
    "has an invalid format": _l("has an invalid format"),
}
# The same for the texts that carry a number (the schema's bounds).
_NUMBERED_PROBLEM = re.compile(
    r"^(must be at least|must be at most|at most|at least) (\d{1,9}(?:\.\d{1,6})?)"
    r"( characters)?$")


def _numbered_words(kind: str, number: str, characters: bool) -> str | None:
    n = format_decimal(Decimal(number))
    words = {
        ("must be at least", False): _("must be at least %(n)s", n=n),
        ("must be at most", False): _("must be at most %(n)s", n=n),
        ("at most", True): _("at most %(n)s characters", n=n),
        ("at least", True): _("at least %(n)s characters", n=n),
    }
    return words.get((kind, characters))


def _plain_problem(problem: FieldProblem) -> FieldProblem:
    """A problem in the page's words, without the codes of a closed list ("must be one of
    online, in_person")."""
    if problem.message.startswith("must be one of "):
        return FieldProblem(problem.path, _("choose one of the options offered"))
    if problem.message in PROBLEM_WORDS:
        return FieldProblem(problem.path, str(PROBLEM_WORDS[problem.message]))
    numbered = _NUMBERED_PROBLEM.match(problem.message)
    if numbered:
        words = _numbered_words(numbered.group(1), numbered.group(2), bool(numbered.group(3)))
        if words:
            return FieldProblem(problem.path, words)
    return problem


def _render_form(doc: dict, problems: list[FieldProblem], mc: MicroCredential | None,
                 status: int = 200, outcome_slots: int = 0,
                 level_slots: dict[int, int] | None = None) -> tuple[str, int]:
    """`outcome_slots` / `level_slots` (rendered outcome index -> rows) ask for at least that
    many slots (the "add another" buttons); typed rows always keep one empty slot after them."""
    outcomes = list(doc.get("outcomes") or []) if isinstance(doc.get("outcomes"), list) else []
    outcomes += [{}] * max(EXTRA_OUTCOME_SLOTS, outcome_slots - len(outcomes))
    problems = [_plain_problem(p) for p in problems]
    return render_template(
        "catalogue/office_edit.html", doc=doc, outcomes=outcomes, mc=mc,
        errors=_problem_map(problems), problems=problems, kinds=rules.KINDS,
        domains=rules.OUTCOME_DOMAINS, languages=rules.LANGUAGES, field_label=field_label,
        kind_labels=labels.KIND, domain_labels=labels.DOMAIN, language_labels={
            code: Locale.parse(code).get_display_name(str(get_locale() or "en"))
            for code in rules.LANGUAGES},
        participation_forms=rules.PARTICIPATION_FORMS, participation_labels=PARTICIPATION_LABELS,
        labels=labels, rules=rules, min_level_slots=MIN_LEVEL_SLOTS,
        level_slots=level_slots or {}), status


_OUTCOME_KEY = re.compile(r"^outcomes\[(\d{1,3})\]\.")
_LEVEL_KEY = re.compile(r"^outcomes\[(\d{1,3})\]\.rubric\.levels\[(\d{1,3})\]\.")


def _add_slot_requested() -> bool:
    return "add_outcome" in request.form or "add_level" in request.form


def _render_with_another_slot(doc: dict, mc: MicroCredential | None) -> tuple[str, int]:
    """The "add another outcome / level" buttons: the same form again with what was typed and
    one more empty slot; nothing is validated or stored. Blank rows are dropped as on save, so
    slot counts are mapped from posted indices to the rows the page shows."""
    items = list(request.form.items(multi=True))
    posted: dict[int, list[tuple[str, str]]] = {}
    levels_posted: dict[int, int] = {}
    for key, value in items:
        if found := _OUTCOME_KEY.match(key):
            posted.setdefault(int(found[1]), []).append((key, value))
        if found := _LEVEL_KEY.match(key):
            i, j = int(found[1]), int(found[2])
            levels_posted[i] = max(levels_posted.get(i, 0), j + 1)
    kept = sorted(i for i, fields in posted.items()
                  if importexport.form_to_dict(fields).get("outcomes"))

    def shown_at(index: int) -> int:  # where posted outcome `index` appears on the new page
        return kept.index(index) if index in kept else len(kept)

    level_slots: dict[int, int] = {}
    for index, count in levels_posted.items():
        at = shown_at(index)
        level_slots[at] = max(level_slots.get(at, 0), count)
    outcome_slots = len(posted) + (1 if "add_outcome" in request.form else 0)
    raw_level = request.form.get("add_level", "")
    if raw_level.isdigit() and len(raw_level) <= 3:
        at = shown_at(int(raw_level))
        level_slots[at] = max(level_slots.get(at, 0), MIN_LEVEL_SLOTS) + 1
        outcome_slots = max(outcome_slots, at + 1)
    return _render_form(doc, [], mc, 200, min(outcome_slots, importexport.MAX_FORM_ITEMS),
                        {at: min(n, importexport.MAX_FORM_ITEMS)
                         for at, n in level_slots.items()})


def _submitted_plan(platform_id: int, code: str | None = None
                    ) -> tuple[dict, rules.DesignPlan | None, list[FieldProblem]]:
    doc = importexport.form_to_dict(request.form.items(multi=True))
    if code is not None:
        doc["code"] = code  # the code is fixed once created
    try:
        return doc, service.plan_from_document(get_db(), platform_id, doc), []
    except ValidationFailed as failed:
        return doc, None, failed.problems


@bp.route("/admin/microcredentials/new", methods=["GET", "POST"])
@require_role("admin")
def office_new() -> BaseResponse | tuple[str, int]:
    actor = require_actor()
    if request.method == "GET":
        return _render_form({"kind": "course", "language": "en"}, [], None)
    if _add_slot_requested():
        return _render_with_another_slot(
            importexport.form_to_dict(request.form.items(multi=True)), None)
    db = get_db()
    doc, plan, problems = _submitted_plan(actor.platform_id)
    if plan is not None:
        try:
            version = service.create(db, actor.platform_id, plan, actor)
        except ValidationFailed as failed:
            problems = failed.problems
        else:
            db.commit()
            return _see("catalogue.office_detail", mc_id=version.micro_credential_id)
    return _render_form(doc, problems, None, 422)


@bp.route("/admin/microcredentials/<int:mc_id>/edit", methods=["GET", "POST"])
@require_role("admin")
def office_edit(mc_id: int) -> BaseResponse | tuple[str, int]:
    actor = require_actor()
    db = get_db()
    mc = service.get_micro_credential(db, actor.platform_id, mc_id)
    if request.method == "GET":
        return _render_form(importexport.plan_to_dict(service.plan_of(mc.head)), [], mc)
    if _add_slot_requested():
        doc = importexport.form_to_dict(request.form.items(multi=True))
        doc["code"] = mc.code
        return _render_with_another_slot(doc, mc)
    doc, plan, problems = _submitted_plan(actor.platform_id, mc.code)
    if plan is not None:
        try:
            # An illegal transition answers 409 through the app's error handler.
            service.update(db, actor.platform_id, mc.id, plan, actor,
                           settings=current_app.config["LTI_SETTINGS"],
                           release_held=issuance.issue_held)
        except ValidationFailed as failed:
            problems = failed.problems
        else:
            db.commit()
            return _see("catalogue.office_detail", mc_id=mc.id)
    return _render_form(doc, problems, mc, 422)


def _version_of(mc: MicroCredential, number: int | None) -> MicroCredentialVersion:
    if number is None:
        return mc.head
    for version in mc.versions:
        if version.version == number:
            return version
    raise NotFound(_("This micro-credential has no version %(n)s.", n=number))


@bp.get("/admin/microcredentials/<int:mc_id>")
@require_role("admin")
def office_detail(mc_id: int, *, version_number: int | None = None, form_action: str = "",
                  form_error: str = "", form: dict | None = None) -> str:
    """One micro-credential: a version's plan, its workflow actions, versions and history.

    A refused workflow action renders it again with the message at its form and what was typed.
    """
    actor = require_actor()
    db = get_db()
    mc = service.get_micro_credential(db, actor.platform_id, mc_id)
    version = _version_of(mc, version_number or request.args.get("version", type=int))
    plan = service.plan_of(version)
    history = service.history(db, actor.platform_id, mc.id)
    ids = {event.actor_person_id for event in history if event.actor_person_id}
    people = {person.id: person.name or person.sub for person in db.scalars(
        select(Person).where(Person.id.in_(ids), Person.platform_id == actor.platform_id))}
    now = utcnow()
    return render_template(
        "catalogue/office_detail.html", mc=mc, version=version, plan=plan,
        warnings=plan.warnings(), actions=rules.available_actions(version.status),
        history=history, people=people, participation_labels=PARTICIPATION_LABELS,
        labels=labels, gaps=labels.annex_names(rules.annex_gaps(plan)),
        now=now, due_min=(now + timedelta(days=1)).date().isoformat(),
        due_max=rules.add_years(now, rules.REVALIDATION_YEARS).date().isoformat(),
        form_action=form_action, form_error=form_error, form=form or {})


def _act_message(exc: BadRequest | Conflict) -> str:
    """Words for a refused workflow action (a date out of range names the latest date)."""
    if isinstance(exc.__cause__, ValidationFailed) and any(
            p.path == "revalidation_due" for p in exc.__cause__.problems):
        return _("The next revalidation must be after today and at most three years from now.")
    return exc.message


def _parse_due(raw: str) -> datetime | None:
    if not raw.strip():
        return None
    try:
        day = datetime.strptime(raw.strip(), "%Y-%m-%d")
    except ValueError:
        raise BadRequest(_("The revalidation date must be a date (YYYY-MM-DD)."),
                         details={"revalidation_due": raw[:40]}) from None
    return day.replace(hour=23, minute=59, tzinfo=UTC)


@bp.post(f"/admin/microcredentials/<int:mc_id>/versions/<int:version_id>/<any({ACTIONS}):action>")
@require_role("admin")
def office_act(mc_id: int, version_id: int, action: str) -> BaseResponse | tuple[str, int]:
    """Submit, reject, approve, revalidate or retire one version (recorded with who and when)."""
    actor = require_actor()
    db = get_db()
    mc = service.get_micro_credential(db, actor.platform_id, mc_id)
    if version_id not in {v.id for v in mc.versions}:
        raise NotFound(_("No such version of this micro-credential."))
    note = request.form.get("note", "").strip()[:2000]
    try:
        if action == "retire" and request.form.get("confirm") != "1":
            # The checkbox is required in the page too; a request without it changes nothing.
            raise BadRequest(_("Tick the box to confirm the retirement; nothing was changed."))
        due = _parse_due(request.form.get("revalidation_due", ""))
        with _domain_errors():
            version = service.act(db, actor.platform_id, version_id, action, actor,
                                  settings=current_app.config["LTI_SETTINGS"],
                                  release_held=issuance.issue_held, note=note, due=due)
    except (BadRequest, Conflict) as exc:
        if request.accept_mimetypes.best_match(["text/html", "application/json"]) \
                == "application/json":
            raise
        db.rollback()
        number = next(v.version for v in mc.versions if v.id == version_id)
        return office_detail(mc.id, version_number=number, form_action=action,
                             form_error=_act_message(exc), form={
                                 "note": note,
                                 "revalidation_due": request.form.get("revalidation_due", "")[:40],
                             }), exc.status
    db.commit()
    return _see("catalogue.office_detail", mc_id=mc.id, version=version.version)


@bp.get("/admin/microcredentials/<int:mc_id>/export")
@require_role("admin")
def office_export(mc_id: int) -> Response:
    """A version's Design Plan as a file (`?format=yaml|json&version=N`)."""
    actor = require_actor()
    mc = service.get_micro_credential(get_db(), actor.platform_id, mc_id)
    fmt = request.args.get("format", "yaml")
    if fmt not in importexport.FORMATS:
        raise BadRequest(_("The format must be yaml or json."))
    version = _version_of(mc, request.args.get("version", type=int))
    body = importexport.dump(service.plan_of(version), fmt)
    mimetype = "application/json" if fmt == "json" else "application/yaml"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{mc.code}-v{version.version}.{fmt}"')
    return response


# --- the instructor -------------------------------------------------------------------------


@bp.get("/instructor/offerings")
@require_role("instructor")
def instructor_offerings() -> str:
    actor = require_actor()
    offerings = course_offerings(get_db(), actor)
    return render_template("catalogue/instructor_offerings.html", offerings=offerings,
                           policy_labels=POLICY_LABELS)


def _offering_form() -> tuple[dict, rules.OfferingSettings | None, list[FieldProblem]]:
    form = request.form
    problems: list[FieldProblem] = []
    closes: datetime | None = None
    raw_close = form.get("window_closes_at", "").strip()
    if raw_close:
        try:
            closes = datetime.fromisoformat(raw_close).replace(tzinfo=UTC)
        except ValueError:
            problems.append(FieldProblem("window_closes_at", _("must be a date and time")))
    raw_days = form.get("reevaluation_window_days", "").strip()
    days = int(raw_days) if raw_days.isdigit() and len(raw_days) < 6 else 0
    raw_items = form.getlist("grade_item_ids")
    if any(not item.isdigit() or len(item) > 18 for item in raw_items):
        problems.append(FieldProblem("grade_item_ids", _("not a gradebook item")))
    wanted = rules.OfferingSettings(
        window_closes_at=closes, reevaluation_policy=form.get("reevaluation_policy", ""),
        reevaluation_window_days=days,
        grade_item_ids=tuple(int(i) for i in raw_items if i.isdigit() and len(i) <= 18),
        grade_passback=form.get("grade_passback") == "on")
    values = {"window_closes_at": raw_close, "reevaluation_policy": wanted.reevaluation_policy,
              "reevaluation_window_days": raw_days, "grade_item_ids": set(wanted.grade_item_ids),
              "grade_passback": wanted.grade_passback}
    return values, (None if problems else wanted), problems


@bp.route("/instructor/offerings/<int:offering_id>", methods=["GET", "POST"])
@require_role("instructor")
def instructor_offering(offering_id: int) -> BaseResponse | tuple[str, int]:
    """Assessment window, re-evaluation policy and window, and (embedded) gradebook items."""
    actor = require_actor()
    db = get_db()
    offering = visible_offering(db, actor, offering_id)
    status = 200
    problems: list[FieldProblem] = []
    if request.method == "POST":
        values, wanted, problems = _offering_form()
        if wanted is not None:
            was_sending = offering.grade_passback
            try:
                service.configure_offering(db, offering, wanted)
            except ValidationFailed as failed:
                problems = failed.problems
            else:
                if offering.grade_passback and not was_sending:
                    queue_offering_passbacks(db, offering.id)  # results so far go out too
                db.commit()
                return _see("catalogue.instructor_offering", offering_id=offering.id)
        status = 422
    else:
        closes = offering.window_closes_at
        values = {"window_closes_at": closes.strftime("%Y-%m-%dT%H:%M") if closes else "",
                  "reevaluation_policy": offering.reevaluation_policy,
                  "reevaluation_window_days": str(offering.reevaluation_window_days),
                  "grade_item_ids": set(offering.grade_item_ids or []),
                  "grade_passback": offering.grade_passback}
    problems = [_plain_problem(p) for p in problems]
    return render_template(
        "catalogue/instructor_offering.html", offering=offering, values=values,
        errors=_problem_map(problems), problems=problems,
        policies=rules.REEVALUATION_POLICIES, policy_labels=POLICY_LABELS,
        grade_items=service.course_grade_items(db, offering.context_id)), status
