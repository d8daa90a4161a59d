"""Flask application factory (as in Flask's tutorial): settings, database, blueprints."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import NoReturn

from flask import Blueprint, Flask, g, request
from flask.sessions import NullSession, SessionInterface
from flask_babel import Babel
from werkzeug import routing

from lti_tool.badges import office_routes as badges_office_routes
from lti_tool.badges import routes as badges_routes
from lti_tool.catalogue import routes as catalogue_routes
from lti_tool.errors import BadRequest
from lti_tool.grades import lifecycle_routes, sync_routes
from lti_tool.grades import routes as grades_routes
from lti_tool.jobs import routes as jobs_routes
from lti_tool.launch import admin_routes as launch_admin_routes
from lti_tool.launch import registration_routes
from lti_tool.launch import routes as launch_routes
from lti_tool.logs import REQUEST_ID, new_request_id
from lti_tool.metrics import ERRORS, LAUNCHES
from lti_tool.reports import routes as reports_routes
from lti_tool.runtime import Runtime, build_runtime
from lti_tool.secrets import read_or_create_secret
from lti_tool.settings import Settings, load_settings
from lti_tool.web import (
    admin,
    auth,
    framing,
    home,
    instructor,
    learner,
    ops,
    ratelimit,
    session_routes,
)
from lti_tool.web.csrf import CSRF_EXEMPT_ENDPOINTS, csrf_exempt, is_exempt

__all__ = ["BLUEPRINTS", "CSRF_EXEMPT_ENDPOINTS", "create_app", "csrf_exempt"]
from lti_tool.web.db import close_db, get_db
from lti_tool.web.errors import register_error_handlers
from lti_tool.web.i18n import select_locale

# Each feature package keeps its blueprint (`bp`) in its routes module; registered in this order.
BLUEPRINTS: tuple[Blueprint, ...] = (
    launch_routes.bp,  # /lti/*: login, launch, jwks, deep linking
    registration_routes.bp,  # /lti/register: Dynamic Registration
    launch_admin_routes.bp,  # /admin/platforms: registrations and deployments
    catalogue_routes.bp,  # micro-credentials (Office) and offerings (instructor)
    sync_routes.bp,  # gradebook sync status and "Sync now"
    grades_routes.bp,  # mapping, rubric scoring, decisions, re-evaluation
    lifecycle_routes.bp,  # /learner/my-data.json: a learner's own data
    badges_routes.bp,  # public credential, achievement, issuer, status, verify
    badges_office_routes.bp,  # issued credentials and revocation (Office)
    learner.bp,  # learner home: progress and badge claiming
    instructor.bp,  # instructor course overview
    admin.bp,  # Office home, queues, audit log
    reports_routes.bp,  # surveys, follow-ups, feedback links, the annual report
    home.bp,  # the root page and the favicon
    session_routes.bp,  # /session/logout
    jobs_routes.bp,  # /admin/jobs: background jobs, failures and retry (Office)
    ops.bp,  # /health, /ready, /metrics
)
LAUNCH_ENDPOINTS = {"lti.launch", "lti.confirm_launch"}
# The LMS's messages start a new session whatever the browser already holds: reading (and
# renewing, a write) the old one would be a wasted query and commit per login and launch.
LTI_MESSAGE_ENDPOINTS = {"lti.login", *LAUNCH_ENDPOINTS}


class _UnusedSession(NullSession):
    """Flask's cookie session, which nothing in the tool may use."""

    def _fail(self, *args: object, **kwargs: object) -> NoReturn:
        raise RuntimeError("The tool keeps its sessions in the database (lti_tool.web.auth); "
                           "Flask's cookie session is not used.")

    __setitem__ = __delitem__ = clear = pop = popitem = update = setdefault = _fail


class NoCookieSession(SessionInterface):
    """The tool's sessions are database rows (`store.sessions`, read by `web.auth`): Flask's
    signed-cookie session is neither opened nor saved, which spared every request a signing
    serializer and a cookie lookup."""

    null_session_class = _UnusedSession

    def open_session(self, app, request):
        return self.make_null_session(app)

    def save_session(self, app, session, response) -> None:
        return None


class IntegerConverter(routing.IntegerConverter):
    """`<int:...>` limited to the ids a database column can hold (same name as Werkzeug's, so
    code that looks at converters sees an integer converter)."""

    def __init__(self, url_map, *args, **kwargs) -> None:
        kwargs.setdefault("max", 2**31 - 1)  # PostgreSQL INTEGER, the type of every id
        super().__init__(url_map, *args, **kwargs)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    settings = settings or (runtime.settings if runtime else load_settings())
    runtime = runtime or build_runtime(settings)
    app = Flask(__name__)
    # Ids in URLs come from anyone: one beyond a 64-bit integer is a 404 before any view runs
    # (the databases cannot compare it: SQLite overflows, PostgreSQL refuses).
    app.url_map.converters["int"] = IntegerConverter
    app.config.update(
        LTI_SETTINGS=settings,
        SECRET_KEY=settings.secret_key
        or (secrets.token_hex(32) if settings.testing else read_or_create_secret(
            Path(settings.data_dir) / "flask_secret", 32)),
        MAX_CONTENT_LENGTH=8 * 1024 * 1024,
        TESTING=settings.testing,
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
    )
    app.extensions["lti_tool"] = runtime
    app.session_interface = NoCookieSession()
    Babel(app, locale_selector=select_locale)
    app.teardown_appcontext(close_db)
    register_error_handlers(app)

    @app.before_request
    def _request_id() -> None:
        g.request_id = new_request_id(request.headers.get("X-Request-Id"))
        g.request_id_token = REQUEST_ID.set(g.request_id)

    @app.teardown_request
    def _forget_request_id(_exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            REQUEST_ID.reset(token)

    @app.before_request
    def _refuse_nul() -> None:
        # A NUL character in a path or parameter is never meaningful here, and PostgreSQL
        # refuses it in text (a 500): a clear 400 before any view or lookup runs.
        # every value of a repeated parameter, and the names too (MultiDict.values() gives
        # only each name's first value)
        if "\x00" in request.path or any("\x00" in name or "\x00" in value for name, value in (
                *request.args.items(multi=True), *request.form.items(multi=True),
                *request.headers.items())):
            raise BadRequest("The request contains a NUL character.")

    @app.before_request
    def _identify() -> None:
        if request.endpoint in LTI_MESSAGE_ENDPOINTS and auth.CODE_PARAM not in request.args:
            g.actor, g.sid, g.cookieless = None, None, False
        else:
            g.actor = auth.load_actor(get_db())
        view = app.view_functions.get(request.endpoint or "")
        if view is not None and not is_exempt(view):
            auth.check_csrf()

    @app.after_request
    def _count(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        if request.endpoint in LAUNCH_ENDPOINTS:
            LAUNCHES.labels("ok" if response.status_code < 400 else "error").inc()
        if response.status_code >= 400:
            ERRORS.labels(g.get("error_kind") or f"http_{response.status_code}").inc()
        return response

    @app.after_request
    def _frameable(response):
        # The tool lives inside LMS iframes, framed only by its registrations' platforms.
        if "Content-Security-Policy" not in response.headers:
            actor = g.get("actor")
            known = g.get("frame_platform")
            platform_id = actor.platform_id if actor else (
                known.id if known is not None else g.get("frame_platform_id"))
            db = get_db()
            try:
                headers = framing.frame_headers(db, platform_id, settings.frame_ancestors, known)
            except Exception:
                db.rollback()  # hide the answer: start a clean one for the lookup
                try:
                    headers = framing.frame_headers(db, platform_id, settings.frame_ancestors)
                except Exception:  # the database is gone (/health, /ready must still answer)
                    db.rollback()
                    headers = {"Content-Security-Policy": "frame-ancestors 'self'",
                               "X-Frame-Options": "SAMEORIGIN"}
            response.headers.update(headers)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        return response

    @app.context_processor
    def _template_helpers() -> dict:
        return {
            "actor": g.get("actor"),
            "session_url": auth.session_url,
            "csrf_token": auth.csrf_token,
            "csrf_field": auth.CSRF_FIELD,
            "sid": g.get("sid"),
            "current_locale": select_locale(),
        }

    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    ratelimit.install(app, settings, runtime.engine)
    return app
