"""LTI endpoints: /lti/jwks, /lti/login, /lti/launch, /lti/launch/confirm, /lti/deep-link.

The views only translate HTTP to the services in `oidc`, `validation`, `flow` and
`deep_linking`. Dynamic Registration (/lti/register) is the `registration` blueprint in
`registration_routes.py`, under the same /lti prefix.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy.orm import Session
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.wrappers import Response as BaseResponse

from lti_tool.catalogue import placement
from lti_tool.errors import LaunchError, PayloadTooLarge
from lti_tool.grades import passback, sync
from lti_tool.launch import deep_linking, flow, login_state, oidc, validation
from lti_tool.launch.claims import DEEP_LINKING_REQUEST, LAUNCH_PRESENTATION
from lti_tool.launch.jwks_cache import JwksCache, fetch_jwks
from lti_tool.launch.platforms import RegistrationNotActive
from lti_tool.outbound import client_for
from lti_tool.settings import Settings
from lti_tool.store import keys as tool_keys
from lti_tool.store.models.core import Platform
from lti_tool.web import auth
from lti_tool.web.csrf import csrf_exempt
from lti_tool.web.db import get_db

log = logging.getLogger(__name__)

bp = Blueprint("lti", __name__, url_prefix="/lti", template_folder="templates",
               static_folder="static")

STATE_COOKIE_PREFIX = "lti_state_"
# The state's SameSite=Lax twin: a browser that refuses the Secure one (plain-HTTP loopback in
# some browsers) still returns it on the tool's own same-origin re-post of the launch form.
LAX_COOKIE_PREFIX = "lti_state_lax_"
RELAY_FIELD = "lti_relay"
COOKIE_CHECK = "lti_cookie_check"
STORAGE_HEADER = "X-LTI-Storage-Check"
# Room for state and form overhead around the id_token before the body counts as oversize.
FORM_SLACK = 8192
FRAMED = ("iframe", "frame")


def _settings() -> Settings:
    return current_app.config["LTI_SETTINGS"]


def jwks_cache() -> JwksCache:
    """The app's platform-key cache (tests may replace it in `app.extensions`)."""
    cache = current_app.extensions.get("lti_jwks_cache")
    if cache is None:
        outbound = client_for(_settings())
        cache = current_app.extensions["lti_jwks_cache"] = JwksCache(
            fetch=lambda url: fetch_jwks(url, outbound=outbound))
    return cache


def _state_cookie_kwargs(*, httponly: bool = True) -> dict:
    kwargs = auth.cookie_kwargs()
    kwargs.update(max_age=int(login_state.LIFETIME.total_seconds()), path="/lti/",
                  httponly=httponly)
    return kwargs


def _set_state_cookies(response: BaseResponse, state: str) -> None:
    """Bind this browser to the login: the state cookie (SameSite=None; Secure where the
    browser takes it) and its SameSite=Lax twin."""
    response.set_cookie(STATE_COOKIE_PREFIX + state, state, **_state_cookie_kwargs())
    lax = _state_cookie_kwargs()
    lax.update(secure=False, samesite="Lax")
    response.set_cookie(LAX_COOKIE_PREFIX + state, state, **lax)


def _state_cookie_returned(state: str) -> bool:
    return state in (request.cookies.get(STATE_COOKIE_PREFIX + state),
                     request.cookies.get(LAX_COOKIE_PREFIX + state))


def _framed() -> bool:
    return request.headers.get("Sec-Fetch-Dest", "") in FRAMED


@bp.get("/jwks")
def jwks() -> Response:
    """The tool's public keys (kid, alg RS256, use sig), for client assertions and deep links."""
    db = get_db()
    document = tool_keys.public_jwks(db, _settings(), "lti")
    db.commit()  # the first request creates the key
    response = jsonify(document)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.route("/login", methods=["GET", "POST"])
@csrf_exempt
def login() -> BaseResponse | str:
    """OIDC login initiation: remember state and nonce, send the browser to the platform."""
    db = get_db()
    params = request.form if request.method == "POST" else request.args
    for name in (*oidc.LOGIN_PARAMS, "lti_storage_target"):
        if len(params.getlist(name)) > 1:
            raise oidc.LoginError(f"The login request has more than one {name} parameter.")
    start = oidc.begin_login(db, _settings(), params, _state_secret())  # writes nothing
    g.frame_platform = start.platform  # the frame headers read it, not the database
    response: BaseResponse
    if start.storage_target:
        # Cookie-less capable: platform storage keeps the state; the cookie is a bonus.
        body = render_template("launch/login_storage.html", start=start,
                               retry_url=_login_again_url(params))
        response = current_app.make_response(body)
    elif _framed():
        # In an LMS iframe a blocked third-party cookie would lose the state: test first.
        body = render_template("launch/login_cookie_check.html", start=start,
                               retry_url=_login_again_url(params), cookie_check=COOKIE_CHECK)
        response = current_app.make_response(body)
        response.set_cookie(COOKIE_CHECK, "1", **_state_cookie_kwargs(httponly=False))
    else:
        response = redirect(start.auth_url, code=302)
    _set_state_cookies(response, start.state)
    response.headers["Cache-Control"] = "no-store"
    return response


def _state_secret() -> str | bytes:
    """The key login states are signed with: the app's secret, the same in every worker."""
    return current_app.secret_key or ""


def _login_again_url(params) -> str:
    """This login initiation again, for a page that offers to restart it in a new window."""
    return url_for("lti.login", _external=True,
                   **{k: v for k, v in params.items() if k in oidc.LOGIN_PARAMS})


def _launch_form() -> tuple[str, str | None]:
    """id_token and state from the form POST, refusing oversize bodies before parsing."""
    limit = _settings().max_id_token_bytes
    if (request.content_length or 0) > limit + FORM_SLACK:
        raise PayloadTooLarge(f"The launch request is larger than the {limit}-byte id_token "
                              "limit allows.")
    if request.mimetype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise LaunchError("The launch must be a form POST (application/x-www-form-urlencoded) "
                          "carrying id_token and state.")
    for name in ("id_token", "state"):
        if len(request.form.getlist(name)) > 1:
            raise LaunchError(f"The launch form has more than one {name} field.")
    id_token = request.form.get("id_token")
    if not id_token:
        error = request.form.get("error")
        if error:
            detail = request.form.get("error_description", "")[:300]
            raise LaunchError(f"The platform refused the login: {error[:100]} {detail}".strip())
        raise LaunchError("The launch has no id_token field.")
    return id_token, request.form.get("state")


@bp.errorhandler(RegistrationNotActive)
def registration_not_active(exc: RegistrationNotActive):
    """A pending or disabled registration's login or launch: a clear page, a 403, no rows."""
    if request.accept_mimetypes.best == "application/json":
        return jsonify({"error": exc.code, "message": exc.message, "details": exc.details}), 403
    return render_template("launch/waiting.html", status=exc.details.get("status"),
                           platform_id=exc.details.get("platform_id")), 403


def _checked_launch() -> flow.CheckedLaunch:
    db = get_db()
    id_token, state = _launch_form()
    verified = validation.verify_id_token(db, _settings(), id_token, jwks_cache())
    return flow.check_launch(db, verified, state, _state_secret())


def _home(role: str, message_type: str, code: str | None) -> str:
    """Where the launch lands: deep-linking chooser or the role's home page."""
    values: dict[str, Any] = {auth.CODE_PARAM: code} if code else {}
    if message_type == DEEP_LINKING_REQUEST:
        return url_for("lti.deep_link", **values)
    return url_for(f"{role}.home", **values)  # learner.home, instructor.home, admin.home


def _finish(checked: flow.CheckedLaunch, *, cookieless: bool) -> tuple[str, str]:
    """Write the launch in one transaction; the landing URL and the session token."""
    db = get_db()
    try:
        outcome = flow.complete_launch(db, _settings(), checked, binding=auth.client_binding())
        _send_waiting_grades(db, outcome)
        _sync_after_instructor_launch(db, outcome)
        db.commit()
    except BaseException:
        db.rollback()
        raise
    presentation_target = checked.launch.obj(LAUNCH_PRESENTATION).get("document_target")
    # Carry a one-time launch code whenever a third-party cookie may be blocked: framed
    # launches and platform-storage launches. A new-window launch is first-party: the cookie
    # suffices. The code is spent by the first request and lives 60 s.
    carry_code = (cookieless or bool(checked.login.storage_target) or _framed()
                  or presentation_target in FRAMED)
    code = None
    if carry_code:
        code = auth.mint_code(outcome.session_id, "launch")
    return _home(outcome.role, outcome.message_type, code), outcome.session_token


def _send_waiting_grades(db: Session, outcome: flow.LaunchOutcome) -> None:
    """Scores that waited for the course's AGS service go out once a launch brings it."""
    context = outcome.record.context
    if context is not None:
        passback.send_waiting_after_launch(db, context)


def _sync_after_instructor_launch(db: Session, outcome: flow.LaunchOutcome) -> None:
    """Refresh the course gradebook: a `grades.sync` job stored in the launch's own
    transaction (a worker runs it; the launch never waits for it). A sync that already waits or
    runs is enough (`lti_tool.grades.sync.request_sync`)."""
    settings = _settings()
    context = outcome.record.context
    if (not settings.sync_after_launch or outcome.role == "learner"
            or outcome.message_type == DEEP_LINKING_REQUEST
            or not (context.ags_lineitems_url or context.nrps_url)):
        return
    savepoint = db.begin_nested()
    try:
        sync.request_sync(db, context, trigger="launch")
    except Exception:  # a sync that cannot be stored must not undo the launch
        savepoint.rollback()
        log.exception("the sync after the launch could not be stored (context %s)", context.id)
        return
    savepoint.commit()


def _with_session(response: BaseResponse, token: str, state: str) -> BaseResponse:
    auth.set_session_cookies(response, token)
    response.delete_cookie(STATE_COOKIE_PREFIX + state, path="/lti/")
    response.delete_cookie(LAX_COOKIE_PREFIX + state, path="/lti/")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/launch")
def launch_get() -> Response:
    """A browser that lands here by GET (a bookmark, a reload, a misconfigured link)."""
    raise MethodNotAllowed(valid_methods=["POST"], description=(
        "The launch URL only takes the LMS's form POST (id_token and state). Open the tool "
        "from your course in the LMS."))


@bp.post("/launch")
@csrf_exempt
def launch() -> BaseResponse | str:
    """The platform's form POST: verify, bind to the login, record, start the session."""
    checked = _checked_launch()
    state = checked.login.state
    g.frame_platform = checked.launch.platform
    if _state_cookie_returned(state):
        location, token = _finish(checked, cookieless=False)
        return _with_session(redirect(location, code=303), token, state)
    if checked.login.storage_target:
        # No cookie came back (third-party cookies blocked): check the state in platform
        # storage from the page, which then confirms through /lti/launch/confirm.
        return auth.no_store(render_template(
            "launch/launch_storage.html", state=state,
            storage_target=checked.login.storage_target,
            platform_origin=oidc.platform_origin(checked.launch.platform),
            id_token=request.form["id_token"], confirm_url=url_for("lti.confirm_launch"),
            storage_header=STORAGE_HEADER))
    if not request.form.get(RELAY_FIELD):
        # A cross-site POST does not carry a SameSite=Lax cookie; the same form re-posted by
        # the tool's own page is same-site and does. Nothing is consumed yet.
        return auth.no_store(render_template(
            "launch/launch_relay.html", id_token=request.form["id_token"], state=state,
            action=url_for("lti.launch"), relay_field=RELAY_FIELD))
    raise LaunchError("State mismatch: the browser did not return the state cookie set at "
                      "login (cookies blocked, or the launch was started elsewhere). Open the "
                      "tool again from the course, in a new window if this repeats.")


@bp.post("/launch/confirm")
@csrf_exempt
def confirm_launch() -> BaseResponse:
    """Second half of a platform-storage launch, called by the tool's own launch page.

    The custom header cannot be sent cross-site without a CORS preflight (never granted), so a
    forged form post from another site cannot skip the page's platform-storage check.
    """
    if request.headers.get(STORAGE_HEADER) != "1" or request.headers.get(
        "Sec-Fetch-Site", "same-origin"
    ) != "same-origin":
        raise LaunchError("The launch confirmation must come from the tool's own launch page.")
    checked = _checked_launch()
    if not checked.login.storage_target:
        raise LaunchError("This launch did not use platform storage; it needs its state cookie.")
    location, token = _finish(checked, cookieless=True)
    return _with_session(jsonify({"location": location}), token, checked.login.state)


@bp.get("/deep-link")
@auth.require_role("instructor", "admin")
def deep_link() -> str:
    """The chooser: what an instructor can place in the course from a deep-linking launch."""
    actor = auth.require_actor()
    deep_linking.return_url(actor)
    items = placement.placeable_items(get_db(), actor)
    return render_template("launch/deep_link.html", items=items, note=None,
                           multiple=deep_linking.accepts_multiple(actor))


@bp.post("/deep-link")
@auth.require_role("instructor", "admin")
def deep_link_respond() -> str | tuple[str, int]:
    """Place the chosen items and hand the signed response back to the LMS (auto-submitted)."""
    actor = auth.require_actor()
    target = deep_linking.return_url(actor)
    db = get_db()
    cancelled = bool(request.form.get("cancel"))
    chosen = [] if cancelled else request.form.getlist("item")
    if not cancelled and not chosen:
        message = _("Choose at least one micro-credential, or cancel.")
        if request.accept_mimetypes.best_match(["text/html", "application/json"]) \
                == "application/json":
            raise LaunchError(message)
        # A form: the chooser again, the message above the list (nothing was checked).
        return render_template("launch/deep_link.html", note=None, error=message,
                               items=placement.placeable_items(db, actor),
                               multiple=deep_linking.accepts_multiple(actor)), 400
    items = [placement.place_item(db, actor, item_id)
             for item_id in deep_linking.checked_choice(actor, chosen)]
    platform = db.get(Platform, actor.platform_id)
    assert platform is not None
    msg = None
    if not items:
        empty = not placement.placeable_items(db, actor)
        msg = deep_linking.NOTHING_APPROVED_MSG if empty else deep_linking.CANCELLED_MSG
    token = deep_linking.response_jwt(db, _settings(), platform, actor.launch_data, items,
                                      msg=msg)
    db.commit()
    return render_template("launch/deep_link_return.html", action=target, jwt=token)
