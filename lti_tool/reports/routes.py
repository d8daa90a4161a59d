"""Pages of the quality cycle: surveys, follow-ups, reflections, stakeholder links, the report.

Learner, instructor and Office pages sit under their role prefixes and are scoped by the
actor; two pages are public: the signed single-use follow-up link sent by e-mail
(`/follow-up/<token>`) and the stakeholder feedback link the Office hands out
(`/feedback/<token>`: no login, its own CSRF check, bounded input). Both are rate-limited
per address by `lti_tool.web.ratelimit` (counters in the database, shared by every worker).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TypedDict

from flask import Blueprint, Response, current_app, redirect, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from lti_tool.domain import surveys as rules
from lti_tool.errors import BadRequest, Forbidden, NotFound
from lti_tool.reports import actions as plan
from lti_tool.reports import surveys
from lti_tool.reports.render import FORMATS, render, render_html
from lti_tool.reports.service import build_report
from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import MicroCredential, MicroCredentialVersion, Offering
from lti_tool.web import view_models
from lti_tool.web.auth import require_actor, require_role, same_for_everyone, session_url
from lti_tool.web.csrf import csrf_exempt
from lti_tool.web.db import get_db, runtime
from lti_tool.web.i18n import select_locale
from lti_tool.web.jinja import install_on_setup

bp = Blueprint("reports", __name__, template_folder="templates")
bp.record_once(install_on_setup)

FEEDBACK_COOKIE = "lti_tool_feedback"


class _FeedbackForm(TypedDict):
    """What a stakeholder typed, shown again on an error."""

    role: str
    themes: list[str]
    rating: str
    text: str


MIME = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8",
        "json": "application/json", "html": "text/html; charset=utf-8"}


def _back(endpoint: str, notice: str, **values: object) -> BaseResponse:
    return redirect(session_url(endpoint, notice=notice, **values), code=303)


# --- Learner -------------------------------------------------------------------------------


@bp.post("/learner/survey/<int:offering_id>")
@require_role("learner")
def answer_survey(offering_id: int) -> BaseResponse:
    """The satisfaction survey: answered or skipped, once per learner and offering."""
    actor = require_actor()
    db = get_db()
    item = next((i for i in view_models.learner_progress(db, actor)
                 if i.offering.id == offering_id), None)
    if item is None:
        raise NotFound("This course has no such micro-credential offering.")
    skipped = request.form.get("action") == "skip"
    surveys.record_satisfaction(
        db, platform_id=actor.platform_id, person_id=actor.person_id, offering_id=offering_id,
        trigger=surveys.survey_trigger(item.status, item.accepted_at is not None),
        form=request.form, skipped=skipped)
    if request.form.get("consent_shown") and not skipped:
        surveys.set_consent(db, institution_id=actor.institution_id,
                            platform_id=actor.platform_id, person_id=actor.person_id,
                            email_ok=request.form.get("email_follow_ups") == "yes")
    db.commit()
    return _back("learner.home", _("Thank you.") if not skipped else _("Survey skipped."))


@bp.post("/learner/consent")
@require_role("learner")
def consent() -> BaseResponse:
    actor = require_actor()
    db = get_db()
    surveys.set_consent(db, institution_id=actor.institution_id, platform_id=actor.platform_id,
                        person_id=actor.person_id,
                        email_ok=request.form.get("email_follow_ups") == "yes")
    db.commit()
    return _back("learner.home", _("Your choice is saved."))


@bp.post("/learner/follow-ups/<int:follow_up_id>")
@require_role("learner")
def answer_follow_up(follow_up_id: int) -> BaseResponse:
    actor = require_actor()
    db = get_db()
    follow_up = surveys.own_follow_up(db, actor.platform_id, actor.person_id, follow_up_id)
    surveys.answer_follow_up(db, follow_up, request.form.getlist("outcome"))
    db.commit()
    return _back("learner.home", _("Thank you for telling us."))


# --- Public: the e-mailed follow-up link ---------------------------------------------------


@bp.route("/follow-up/<token>", methods=["GET", "POST"])
@csrf_exempt  # the signed single-use token is the capability; no session is involved
def follow_up_link(token: str):
    same_for_everyone()
    db = get_db()
    follow_up = surveys.follow_up_from_token(db, runtime().settings, token)
    title = db.scalar(select(MicroCredentialVersion.title)
                      .join(MicroCredential,
                            MicroCredential.id == MicroCredentialVersion.micro_credential_id)
                      .where(MicroCredential.id == follow_up.micro_credential_id)
                      .order_by(MicroCredentialVersion.version.desc()).limit(1))
    if request.method == "POST":
        surveys.answer_follow_up(db, follow_up, request.form.getlist("outcome"))
        db.commit()
        return render_template("reports/thanks.html")
    return render_template("reports/follow_up_public.html", follow_up=follow_up, title=title,
                           outcomes=rules.EMPLOYABILITY_OUTCOMES, token=token)


# --- Public: stakeholder feedback ----------------------------------------------------------


def _form_token(nonce: str, link_token: str) -> str:
    key = (current_app.config["SECRET_KEY"] or "").encode()
    return hmac.new(key, f"{nonce}:{link_token}".encode(), hashlib.sha256).hexdigest()


@bp.route("/feedback/<token>", methods=["GET", "POST"])
@csrf_exempt  # checked below with a double-submit cookie: this page has no session
def stakeholder_feedback(token: str):
    """Employers, graduates and partners say what they think of one micro-credential."""
    same_for_everyone()
    db = get_db()
    link = surveys.link_by_token(db, token)
    mc = db.get(MicroCredential, link.micro_credential_id)
    title = mc.head.title if mc else ""
    nonce = request.cookies.get(FEEDBACK_COOKIE, "")
    form = _FeedbackForm(role="", themes=[], rating="", text="")
    error = None
    status = 200
    if request.method == "POST":
        sent = request.form.get("form_token", "")
        if not nonce or len(nonce) > 100 or not hmac.compare_digest(
                sent, _form_token(nonce, token)):
            raise Forbidden("The form has expired or did not come from this page; reload it.")
        form = _FeedbackForm(role=request.form.get("role", "")[:20],
                             themes=request.form.getlist("themes")[:20],
                             rating=request.form.get("rating", "")[:2],
                             text=request.form.get("text", "")[:rules.MAX_FREE_TEXT + 100])
        try:
            surveys.record_feedback(db, link, role=form["role"], themes=form["themes"],
                                    rating=form["rating"], text=form["text"])
        except BadRequest as exc:
            error, status = exc, 400
        else:
            db.commit()
            return render_template("reports/thanks.html")
    nonce = nonce if nonce and len(nonce) <= 100 else secrets.token_urlsafe(24)
    body = render_template("reports/feedback_public.html", title=title, form=form,
                           error=error, form_token=_form_token(nonce, token),
                           roles=rules.STAKEHOLDER_ROLES, themes=rules.FEEDBACK_THEMES,
                           max_text=rules.MAX_FREE_TEXT)
    response = Response(body, status=status, mimetype="text/html")
    response.set_cookie(FEEDBACK_COOKIE, nonce, httponly=True, samesite="Strict",
                        secure=runtime().settings.is_https, max_age=3600, path=request.path)
    return response


# --- Instructor ----------------------------------------------------------------------------


def _course_offering(offering_id: int) -> Offering:
    actor = require_actor()
    offering = next((o for o in view_models.offerings_of(get_db(), actor)
                     if o.id == offering_id), None)
    if offering is None:
        raise NotFound("This course has no such micro-credential offering.")
    return offering


@bp.route("/instructor/reflection/<int:offering_id>", methods=["GET", "POST"])
@require_role("instructor")
def reflection(offering_id: int):
    """The instructor's reflection on an offering: what worked, what to change."""
    actor = require_actor()
    db = get_db()
    offering = _course_offering(offering_id)
    row = surveys.reflection_of(db, offering.id, actor.person_id)
    form = {"worked": row.worked if row else "", "change": row.change if row else ""}
    error = None
    if request.method == "POST":
        form = {"worked": request.form.get("worked", "")[:5000],
                "change": request.form.get("change", "")[:5000]}
        try:
            surveys.save_reflection(db, institution_id=actor.institution_id,
                                    platform_id=actor.platform_id, offering_id=offering.id,
                                    person_id=actor.person_id, **form)
        except BadRequest as exc:
            error = exc
        else:
            db.commit()
            return _back("reports.reflection", _("Your reflection is saved."),
                         offering_id=offering.id)
    return render_template("reports/reflection.html", offering=offering, form=form,
                           error=error, max_text=surveys.MAX_REFLECTION), 400 if error else 200


# --- Office --------------------------------------------------------------------------------


def _year(value: int | None) -> int:
    year = value if value is not None else utcnow().year - 1
    if not 2000 <= year <= 2100:
        raise NotFound("No report for this year.")
    return year


@bp.get("/admin/report")
@require_role("admin")
def report_page() -> str:
    """The Annual Quality Assurance Report on screen, with downloads and the action plan."""
    actor = require_actor()
    db = get_db()
    year = _year(request.args.get("year", type=int))
    report = build_report(db, runtime().settings, institution_id=actor.institution_id,
                          year=year)
    lang = select_locale()
    return render_template(
        "reports/office_report.html", report=report, year=year,
        body=render_html(report, lang, fragment=True), formats=FORMATS,
        mcs=[f["mc"] for f in report.figures["per_mc"].values()],
        statuses=plan.STATUSES, now=utcnow())


@bp.get("/admin/report/<int:year>/<any(pdf,csv,json,html):fmt>")
@require_role("admin")
def report_download(year: int, fmt: str) -> BaseResponse:
    actor = require_actor()
    year = _year(year)
    report = build_report(get_db(), runtime().settings, institution_id=actor.institution_id,
                          year=year)
    body = render(report, fmt, select_locale())
    return Response(body, mimetype=MIME[fmt], headers={
        "Content-Disposition": f'attachment; filename="quality-report-{year}.{fmt}"'})


@bp.post("/admin/actions")
@require_role("admin")
def create_action() -> BaseResponse:
    actor = require_actor()
    db = get_db()
    action = plan.create_action(db, institution_id=actor.institution_id,
                                platform_id=actor.platform_id, person_id=actor.person_id,
                                form=request.form)
    db.commit()
    return _back("reports.report_page", _("The improvement action is recorded."),
                 year=action.year, _anchor="plan")


@bp.post("/admin/actions/<int:action_id>")
@require_role("admin")
def update_action(action_id: int) -> BaseResponse:
    actor = require_actor()
    db = get_db()
    action = plan.update_action(db, institution_id=actor.institution_id, action_id=action_id,
                                form=request.form)
    db.commit()
    year = request.form.get("report_year", type=int) or action.year
    return _back("reports.report_page", _("The improvement action is updated."), year=year,
                 _anchor="plan")


def _questions_from_form() -> list[rules.Question]:
    questions = []
    for index in range(rules.MAX_QUESTIONS + 1):
        code = (request.form.get(f"code-{index}") or "").strip()
        if not code:
            continue
        questions.append(rules.Question(
            code[:40], request.form.get(f"kind-{index}", rules.LIKERT)[:10],
            {"en": (request.form.get(f"en-{index}") or "")[:400],
             "tr": (request.form.get(f"tr-{index}") or "")[:400]}))
    return questions


@bp.route("/admin/surveys", methods=["GET", "POST"])
@require_role("admin")
def survey_questions():
    """The Office edits its satisfaction questions, in English and Turkish."""
    actor = require_actor()
    db = get_db()
    questions = surveys.questions_of(db, actor.institution_id)
    error = None
    if request.method == "POST":
        questions = _questions_from_form()
        try:
            surveys.save_questions(db, actor.institution_id, questions)
        except BadRequest as exc:
            error = exc
        else:
            db.commit()
            return _back("reports.survey_questions", _("The survey questions are saved."))
    rows = list(questions) + [rules.Question("", rules.LIKERT, {"en": "", "tr": ""})]
    return render_template("reports/questions.html", questions=rows[:rules.MAX_QUESTIONS + 1],
                           error=error, kinds=rules.QUESTION_KINDS), 400 if error else 200


@bp.route("/admin/feedback-links", methods=["GET", "POST"])
@require_role("admin")
def feedback_links():
    """Public stakeholder feedback links, one or more per micro-credential."""
    actor = require_actor()
    db = get_db()
    if request.method == "POST":
        try:
            mc_id = int(request.form.get("micro_credential_id") or "")
        except ValueError as exc:
            raise BadRequest("Choose a micro-credential from the list.") from exc
        surveys.create_link(db, institution_id=actor.institution_id,
                            platform_id=actor.platform_id, mc_id=mc_id,
                            label=request.form.get("label", ""))
        db.commit()
        return _back("reports.feedback_links", _("The feedback link is ready to hand out."))
    catalogue = view_models.catalogue_of(db, actor)
    titles = {v.micro_credential_id: f"{v.micro_credential.code} — {v.title}"
              for v in catalogue.heads}
    links = [(link, titles.get(link.micro_credential_id, ""),
              runtime().settings.url(f"/feedback/{link.token}"))
             for link in surveys.links_of(db, actor.institution_id)]
    return render_template("reports/feedback_links.html", links=links, catalogue=catalogue)
