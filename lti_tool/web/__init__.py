"""Flask application factory (as in Flask's tutorial): settings, database, blueprints."""

from __future__ import annotations

import secrets
from pathlib import Path

from flask import Blueprint, Flask, g, jsonify, request
from flask_babel import Babel
from sqlalchemy import text

from lti_tool.badges import office_routes as badges_office_routes
from lti_tool.badges import routes as badges_routes
from lti_tool.catalogue import routes as catalogue_routes
from lti_tool.grades import lifecycle_routes, sync_routes
from lti_tool.grades import routes as grades_routes
from lti_tool.launch import admin_routes as launch_admin_routes
from lti_tool.launch import registration_routes
from lti_tool.launch import routes as launch_routes
from lti_tool.runtime import Runtime, build_runtime
from lti_tool.secrets import read_or_create_secret
from lti_tool.settings import Settings, load_settings
from lti_tool.web import admin, auth, home, instructor, learner, ratelimit
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
    home.bp,  # the root page and the favicon
)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    settings = settings or (runtime.settings if runtime else load_settings())
    runtime = runtime or build_runtime(settings)
    app = Flask(__name__)
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
    Babel(app, locale_selector=select_locale)
    app.teardown_appcontext(close_db)
    register_error_handlers(app)

    @app.before_request
    def _identify() -> None:
        g.actor = auth.load_actor(get_db())
        view = app.view_functions.get(request.endpoint or "")
        if view is not None and not is_exempt(view):
            auth.check_csrf()

    @app.after_request
    def _frameable(response):
        # The tool lives inside LMS iframes on other origins.
        response.headers.setdefault("Content-Security-Policy", "frame-ancestors *")
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

    @app.get("/health")
    def health():
        get_db().execute(text("SELECT 1"))
        return jsonify({"status": "ok"})

    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    ratelimit.install(app, settings, runtime.engine)
    return app
