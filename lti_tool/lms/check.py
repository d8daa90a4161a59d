"""Connection check of a registration's LMS services: what works, what is missing, how to fix it.

`lti-tool platform check ID` and the Office's platform page run it after a registration (Dynamic
Registration stores no web-service token, and an LMS admin may forget a service or a scope). It
asks the token endpoint for each LTI Advantage scope the tool uses, calls the Moodle web service
(site info: are the functions the tool needs in its external service? then the read functions on
the registration's latest course: does the token's user have the capabilities?) or Canvas REST,
and reports each finding with the LMS admin path that fixes it. It reads, never writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.lms.ags import (
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_RESULT_READONLY,
    SCOPE_SCORE,
)
from lti_tool.lms.canvas_rest import CanvasRest
from lti_tool.lms.http import LmsError, LmsHttp
from lti_tool.lms.moodle_ws import (
    ADMIN_PATH_FUNCTIONS,
    ADMIN_PATH_TOKENS,
    REQUIRED_FUNCTIONS,
    MoodleNothingToReport,
    MoodleWs,
)
from lti_tool.lms.nrps import SCOPE_MEMBERSHIP
from lti_tool.lms.retry import retry_policy
from lti_tool.lms.source import canvas_course_id, rest_base_url
from lti_tool.lms.token import ServiceTokens, TokenCache
from lti_tool.outbound import client_for
from lti_tool.secrets import unseal
from lti_tool.settings import Settings
from lti_tool.store.models.core import Context, Platform

# The scopes the tool asks for, what each is for, and the admin path that grants it.
SCOPES = (
    (SCOPE_LINEITEM, "create the micro-credential's grade column (grade passback)"),
    (SCOPE_LINEITEM_READONLY, "read the tool's gradebook columns"),
    (SCOPE_RESULT_READONLY, "read the marks in those columns"),
    (SCOPE_SCORE, "send the micro-credential's grade (grade passback)"),
    (SCOPE_MEMBERSHIP, "read the course roster (Names and Role Provisioning)"),
)
FIX_SCOPES = {
    "moodle": ("Site administration > Plugins > Activity modules > External tool > Manage tools "
               "> the tool's card > Edit: under Services set 'IMS LTI Assignment and Grade "
               "Services' to 'Use this service for grade sync and column management' and 'IMS "
               "LTI Names and Role Provisioning' to 'Use this service to retrieve members' "
               "information'."),
    "canvas": ("Canvas Admin > Developer Keys > the tool's LTI key > Edit: enable the LTI "
               "Advantage services (line items, results, scores, names and roles) and save."),
}
FIX_SCOPES_OTHER = "Enable the LTI Advantage services (AGS and NRPS) for the tool in the LMS."


@dataclass(frozen=True)
class Finding:
    """One check: what was checked, whether it works, and what to do when it does not.

    `what` and `fix` are the CLI's English sentences. `key` names the check and `params` its
    values, so that a page can say the same in its reader's language; `detail` is the LMS
    error in the tool's plain words (`LmsError.message`), when there was one.
    """

    service: str  # "LTI Advantage", "Moodle web services", "Canvas REST"
    what: str
    ok: bool
    fix: str = ""
    key: str = ""
    params: tuple[tuple[str, str], ...] = ()
    detail: str = ""

    @property
    def values(self) -> dict[str, str]:
        return dict(self.params)

    def as_json(self) -> dict[str, object]:
        return {"service": self.service, "what": self.what, "ok": self.ok, "fix": self.fix,
                "key": self.key, "params": self.values, "detail": self.detail}


def run_check(db: Session, settings: Settings, platform: Platform) -> list[Finding]:
    """`check_platform` through the guarded outbound client with the LMS retry policy: what
    `lti-tool platform check` and the Office's "Test connection" button both run."""
    http = LmsHttp(retry_policy(settings), outbound=client_for(settings))
    return check_platform(db, settings, platform, http)


def latest_context(db: Session, platform: Platform) -> Context | None:
    """The registration's most recently launched course (for probes that need a course)."""
    return db.scalar(select(Context).where(Context.platform_id == platform.id)
                     .order_by(Context.updated_at.desc(), Context.id.desc()).limit(1))


def check_platform(db: Session, settings: Settings, platform: Platform, http: LmsHttp
                   ) -> list[Finding]:
    """Every finding for one registration, LTI Advantage scopes first."""
    http = http.for_platform(platform)  # only the registration's recorded hosts
    findings = check_scopes(db, settings, platform, http)
    context = latest_context(db, platform)
    token = unseal(settings, platform.rest_token)  # sealed at rest (lti_tool.secrets)
    if platform.lms_kind == "moodle":
        findings += check_moodle_ws(platform, token, http, context)
    elif platform.lms_kind == "canvas":
        findings += check_canvas_rest(db, platform, token, http, context)
    return findings


def check_scopes(db: Session, settings: Settings, platform: Platform, http: LmsHttp
                 ) -> list[Finding]:
    """Ask the token endpoint for each scope on its own (a refusal names only that scope)."""
    tokens = ServiceTokens(db, settings, platform, http, cache=TokenCache())
    fix = FIX_SCOPES.get(platform.lms_kind, FIX_SCOPES_OTHER)
    findings = []
    for scope, purpose in SCOPES:
        short = scope.rsplit("/", 1)[-1]
        params = (("scope", short), ("lms", platform.lms_kind))
        try:
            tokens.token([scope])
        except LmsError as exc:
            findings.append(Finding("LTI Advantage", f"scope {short}: {purpose}", False,
                                    f"{exc.message} {fix}", "scope", params, exc.message))
            continue
        findings.append(Finding("LTI Advantage", f"scope {short}: {purpose}", True, "",
                                "scope", params))
    return findings


def check_moodle_ws(platform: Platform, token: str | None, http: LmsHttp,
                    context: Context | None) -> list[Finding]:
    service = "Moodle web services"
    base = rest_base_url(platform)
    if not token or not base:
        return [Finding(service, "web-service token", False,
                        f"Create a token for the tool's external service in {ADMIN_PATH_TOKENS} "
                        f"and store it with `lti-tool platform rest-token {platform.id} --file "
                        "FILE`. Without it the tool sees only its own AGS columns, not the "
                        "course's other gradebook items.", "ws_token_missing",
                        (("path", ADMIN_PATH_TOKENS), ("platform_id", str(platform.id))))]
    ws = MoodleWs(http, base, token)
    at = (("url", ws.url),)
    try:
        offered = ws.site_functions()
    except LmsError as exc:
        return [Finding(service, f"web-service token at {ws.url}", False, exc.message,
                        "ws_token", at, exc.message)]
    findings = [Finding(service, f"web-service token at {ws.url}", True, "", "ws_token", at)]
    missing = [name for name in REQUIRED_FUNCTIONS if name not in offered]
    findings.append(Finding(
        service, "functions in the tool's external service", not missing,
        f"Add {', '.join(missing)} in {ADMIN_PATH_FUNCTIONS}." if missing else "",
        "ws_functions", (("functions", ", ".join(missing)), ("path", ADMIN_PATH_FUNCTIONS))))
    if context is None:
        findings.append(Finding(service, "capabilities in a course", False,
                                "Launch the tool from a course once, then run the check again.",
                                "no_course"))
        return findings
    course = context.context_id
    probes = (
        ("gradereport_user_get_grade_items", lambda: ws.user_grade_items(course)),
        ("core_grades_get_gradeitems", lambda: ws.grade_items(course)),
        ("core_competency_list_course_competencies", lambda: ws.course_competencies(course)),
    )
    for function, probe in probes:
        if function in missing:
            continue
        params = (("function", function), ("course", course))
        try:
            probe()
        except MoodleNothingToReport:
            pass
        except LmsError as exc:
            findings.append(Finding(service, f"{function} in course {course}", False,
                                    exc.message, "ws_function", params, exc.message))
            continue
        findings.append(Finding(service, f"{function} in course {course}", True, "",
                                "ws_function", params))
    return findings


def check_canvas_rest(db: Session, platform: Platform, token: str | None, http: LmsHttp,
                      context: Context | None) -> list[Finding]:
    service = "Canvas REST"
    base = rest_base_url(platform)
    if not token or not base:
        return [Finding(service, "API token", False,
                        "Without a Canvas API token the tool reads only its own AGS columns. "
                        "Create a developer API key (Admin > Developer Keys > + API Key) or a "
                        f"user token, then `lti-tool platform rest-token {platform.id} --file "
                        "FILE` and `--base-url https://canvas.example.edu`.",
                        "canvas_token_missing", (("platform_id", str(platform.id)),))]
    rest = CanvasRest(http, base, token)
    course = canvas_course_id(db, context) if context is not None else None
    if course is None:
        return [Finding(service, "API token", False,
                        "Launch the tool from a Canvas course once, then run the check again.",
                        "no_course")]
    params = (("course", str(course)),)
    try:
        next(iter(rest.assignments(course)), None)
    except LmsError as exc:
        return [Finding(service, f"assignments of course {course}", False, exc.message,
                        "canvas_assignments", params, exc.message)]
    return [Finding(service, f"assignments of course {course}", True, "",
                    "canvas_assignments", params)]
