"""`lti-tool demo`: the tool and a practice LMS, one command, Ctrl-C stops both.

The practice LMS is built on the `lti1p3platform` package (an LTI 1.3 platform implementation
we did not write): it starts real OIDC logins, signs id_tokens with its own RS256 key, issues
service tokens for the tool's client assertions, and answers AGS (line items, results, scores)
and NRPS (memberships) in the shapes Moodle uses. The course it serves is `demo_seed`'s.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

import click
from flask import Flask, Response, abort, jsonify, redirect, render_template, request
from jwcrypto import jwk
from lti1p3platform.exceptions import LtiException
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request, TRequest
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Response as BaseResponse

from lti_tool.demo_seed import (
    DEMO_CLIENT_ID,
    DEMO_DEPLOYMENT_ID,
    DemoCourse,
    DemoGradeItem,
    SeedContext,
    practice_course,
    run_tool_seed,
)
from lti_tool.runtime import Runtime, build_runtime
from lti_tool.scheduler import in_process_runner
from lti_tool.secrets import read_secret, write_secret
from lti_tool.settings import DEMO_CONFIG, Settings, load_settings
from lti_tool.store.db import transaction
from lti_tool.store.migrate import upgrade
from lti_tool.web import create_app
from lti_tool.web.accesslog import RedactingRequestHandler

AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
LINEITEM_SCOPES = [AGS + "lineitem", AGS + "lineitem.readonly"]
MEDIA = {
    "lineitems": "application/vnd.ims.lis.v2.lineitemcontainer+json",
    "lineitem": "application/vnd.ims.lis.v2.lineitem+json",
    "results": "application/vnd.ims.lis.v2.resultcontainer+json",
    "score": "application/vnd.ims.lis.v1.score+json",
    "members": "application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
}
TEMPLATES = Path(__file__).resolve().parent / "demo_templates"


# --- lti1p3platform glue ----------------------------------------------------------------------


class PracticeRegistration(Registration):
    """lti1p3platform's registration, with a `kid` on the key (the tool requires one)."""

    def __init__(self, private_pem: str) -> None:
        key = jwk.JWK.from_pem(private_pem.encode())
        self._kid = key.thumbprint()
        self.set_platform_private_key(private_pem)
        self.set_platform_public_key(key.export_to_pem().decode())

    def get_kid(self) -> str:
        return self._kid

    def get_jwks(self) -> list[dict[str, Any]]:
        return [{**key, "kid": self._kid} for key in super().get_jwks()]


class PracticePlatformConfig(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, **kwargs: Any) -> None:
        self._registration = kwargs["registration"]

    def get_registration_by_params(self, **kwargs: Any) -> Registration:
        return self._registration


class FlaskRequest(Request):
    def build_metadata(self, request: Any) -> TRequest:
        return {
            "method": request.method,
            "form_data": request.form.to_dict(),
            "get_data": request.args.to_dict(),
            "headers": dict(request.headers),
            "content_type": request.content_type,
            "path": request.path,
            "json": None,
        }


class PracticeLogin(OIDCLoginAbstract):
    def set_lti_message_hint(self, **kwargs: Any) -> None:
        self._lti_message_hint = json.dumps(kwargs, separators=(",", ":"))

    def get_redirect(self, url: str) -> BaseResponse:
        return redirect(url, code=302)


class PracticeLaunch(LTIAdvantageMessageLaunchAbstract):
    def render_launch_form(self, launch_data: dict[str, Any], **kwargs: Any) -> str:
        # lti1p3platform's own template module needs pkg_resources: render the form here.
        return render_template("autosubmit.html", action=launch_data["launch_url"],
                               fields={"id_token": launch_data["id_token"],
                                       "state": launch_data["state"]})


# --- the practice LMS -------------------------------------------------------------------------


@dataclass
class PracticeLms:
    """Everything the practice LMS needs to know: its URL, the tool's, its key, the course."""

    lms_url: str
    tool_url: str
    private_pem: str
    course: DemoCourse

    def registration(self) -> PracticeRegistration:
        """A fresh registration per request, so a rotated tool key is fetched again."""
        registration = PracticeRegistration(self.private_pem)
        launch = f"{self.tool_url}/lti/launch"
        registration.set_iss(self.lms_url).set_client_id(DEMO_CLIENT_ID)
        registration.set_deployment_id(DEMO_DEPLOYMENT_ID)
        registration.set_oidc_login_url(f"{self.tool_url}/lti/login")
        registration.set_launch_url(launch).set_deeplink_launch_url(launch)
        registration.set_tool_key_set_url(f"{self.tool_url}/lti/jwks")
        return registration

    def config(self) -> PracticePlatformConfig:
        return PracticePlatformConfig(registration=self.registration())

    def course_url(self, path: str = "") -> str:
        return f"{self.lms_url}/api/lti/courses/{self.course.context_id}{path}"

    def lineitem_url(self, item: DemoGradeItem) -> str:
        return self.course_url(f"/lineitems/{item.item_id}/lineitem")

    def lineitem_json(self, item: DemoGradeItem) -> dict:
        return {"id": self.lineitem_url(item), "label": item.label,
                "scoreMaximum": item.score_maximum, "resourceId": item.resource_id,
                "tag": item.tag}


def _paged(lms: PracticeLms, rows: list, url: str) -> tuple[list, dict[str, str]]:
    """`limit` / `from` paging with a well-formed Link: rel="next" header."""
    try:
        limit = int(request.args.get("limit", 0))
        start = int(request.args.get("from", 0))
    except ValueError:
        abort(400, "limit and from must be integers")
    if limit <= 0:
        return rows, {}
    page = rows[start:start + limit]
    headers = {}
    if start + limit < len(rows):
        headers["Link"] = f'<{url}?{urlencode({"limit": limit, "from": start + limit})}>; ' \
                          'rel="next"'
    return page, headers


def _json(body: object, media: str, status: int = 200, headers: dict | None = None) -> Response:
    response = Response(json.dumps(body), status=status,
                        content_type=f"{media}; charset=utf-8")
    response.headers.update(headers or {})
    return response


def create_practice_lms(lms: PracticeLms) -> Flask:
    """The practice LMS's Flask app."""
    app = Flask("practice_lms", template_folder=str(TEMPLATES))
    course = lms.course

    def require_token(scopes: list[str]) -> None:
        auth = request.headers.get("Authorization", "").split()
        if len(auth) != 2 or auth[0].lower() != "bearer":
            abort(401, "Missing bearer token")
        try:
            valid = lms.config().validate_token(auth[1], scopes)
        except Exception:
            valid = False
        if not valid:
            abort(401, "Invalid or expired access token")

    def item_or_404(item_id: int) -> DemoGradeItem:
        item = course.item(item_id)
        if item is None:
            abort(404, f"No line item {item_id}")
        return item

    def _placed_link(index: object) -> dict | None:
        if not isinstance(index, int) or not 0 <= index < len(course.placed_links):
            return None
        return course.placed_links[index]

    @app.get("/")
    def home() -> str:
        return render_template("course.html", course=course, tool_url=lms.tool_url)

    @app.get("/launch")
    def launch() -> Response:
        """Start an OIDC third-party login into the tool as the chosen user."""
        user = course.user(request.args.get("user", ""))
        if user is None:
            abort(404, "No such user in the practice course")
        message = request.args.get("message", "resource_link")
        if message not in ("resource_link", "deep_linking"):
            abort(400, "message must be resource_link or deep_linking")
        locale = request.args.get("locale", "en")
        if locale not in ("en", "tr"):
            abort(400, "locale must be en or tr")
        link = request.args.get("link", type=int)
        if link is not None and not 0 <= link < len(course.placed_links):
            abort(404, "No such link in the practice course")
        login = PracticeLogin(None, lms.config())
        login.set_lti_message_hint(message=message, course=course.context_id, locale=locale,
                                   **({"link": link} if link is not None else {}))
        if message == "deep_linking":
            login.set_deeplinking_launch_url()
        return login.initiate_login(user.user_id)

    @app.route("/auth", methods=["GET", "POST"])
    def authorize() -> str:
        """The platform's OIDC authorization endpoint: check the tool's request, sign a launch."""
        params = request.values
        expected = {"scope": "openid", "response_type": "id_token",
                    "response_mode": "form_post", "prompt": "none",
                    "client_id": DEMO_CLIENT_ID,
                    "redirect_uri": f"{lms.tool_url}/lti/launch"}
        wrong = [name for name, value in expected.items() if params.get(name) != value]
        if wrong:
            abort(400, f"Bad authentication request: {', '.join(wrong)}")
        user = course.user(params.get("login_hint", ""))
        if user is None:
            abort(400, "Unknown login_hint")
        try:
            hint = json.loads(params.get("lti_message_hint", ""))
        except ValueError:
            abort(400, "lti_message_hint is not the one this LMS issued")
        message_launch = PracticeLaunch(FlaskRequest(request), lms.config())
        message_launch.set_user_data(user.user_id, user.lis_roles, full_name=user.name,
                                     email_address=user.email,
                                     preferred_username=user.username)
        message_launch.set_launch_context_claim(
            course.context_id, ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
            course.title, course.label)
        placed = _placed_link(hint.get("link"))
        if placed is not None:
            # A link the tool placed by deep linking: its own resource link and custom values.
            message_launch.set_resource_link_claim(
                f"{course.resource_link_id}-placed-{hint['link']}",
                title=str(placed.get("title") or course.resource_link_title))
        elif hint.get("message") != "deep_linking":
            message_launch.set_resource_link_claim(course.resource_link_id,
                                                   title=course.resource_link_title)
        message_launch.set_launch_presentation_claim("window", f"{lms.lms_url}/")
        message_launch.set_extra_claims({
            "given_name": user.given_name, "family_name": user.family_name,
            "locale": "tr-TR" if hint.get("locale") == "tr" else "en",
            "https://purl.imsglobal.org/spec/lti/claim/tool_platform": {
                "guid": urlparse(lms.lms_url).netloc, "name": "Practice LMS",
                "product_family_code": "lti1p3platform"},
        })
        if placed is not None and placed.get("custom"):
            message_launch.set_extra_claims({
                "https://purl.imsglobal.org/spec/lti/claim/custom": dict(placed["custom"])})
        message_launch.set_ags(lms.course_url("/lineitems"),
                               lms.lineitem_url(course.items[0]))
        message_launch.set_nrps(lms.course_url("/memberships"))
        if hint.get("message") == "deep_linking":
            message_launch.set_dl(f"{lms.lms_url}/deep-link-return", title="Micro-credentials",
                                  accept_types={"ltiResourceLink"})
        try:
            return message_launch.lti_launch()
        except LtiException as exc:
            abort(400, str(exc))
        except AssertionError:
            abort(400, "The authentication request lacks state, nonce or redirect_uri")

    @app.get("/jwks")
    def jwks() -> Response:
        return jsonify(lms.config().get_jwks())

    @app.post("/token")
    def token() -> tuple[Response, int] | Response:
        """Client-credentials grant with the tool's signed assertion (checked by hand too:
        lti1p3platform does not look at iss, sub or aud)."""
        config = lms.config()
        form = request.form.to_dict()
        try:
            claims = config.tool_validate_and_decode(form.get("client_assertion", ""))
            audience = claims.get("aud")
            audiences = audience if isinstance(audience, list) else [audience]
            if claims.get("iss") != DEMO_CLIENT_ID or claims.get("sub") != DEMO_CLIENT_ID:
                return jsonify({"error": "invalid_client"}), 401
            if f"{lms.lms_url}/token" not in audiences and lms.lms_url not in audiences:
                return jsonify({"error": "invalid_client",
                                "error_description": "wrong aud"}), 401
            return jsonify(config.get_access_token(form))
        except (LtiException, KeyError, ValueError) as exc:
            return jsonify({"error": "invalid_request", "error_description": str(exc)}), 400
        except Exception as exc:
            return jsonify({"error": "invalid_client", "error_description": str(exc)}), 401

    base = f"/api/lti/courses/{course.context_id}"

    @app.route(f"{base}/lineitems", methods=["GET", "POST"])
    def lineitems() -> Response:
        if request.method == "POST":
            require_token([AGS + "lineitem"])
            body = request.get_json(force=True, silent=True) or {}
            try:
                maximum = float(body["scoreMaximum"])
                label = str(body["label"])
            except (KeyError, TypeError, ValueError):
                abort(400, "A line item needs label and a numeric scoreMaximum")
            item = course.add_item(label, maximum, str(body.get("tag", "")),
                                   str(body.get("resourceId", "")))
            return _json(lms.lineitem_json(item), MEDIA["lineitem"], 201)
        require_token(LINEITEM_SCOPES)
        rows = [lms.lineitem_json(item) for item in course.items]
        page, headers = _paged(lms, rows, lms.course_url("/lineitems"))
        return _json(page, MEDIA["lineitems"], headers=headers)

    @app.get(f"{base}/lineitems/<int:item_id>/lineitem")
    def lineitem(item_id: int) -> Response:
        require_token(LINEITEM_SCOPES)
        return _json(lms.lineitem_json(item_or_404(item_id)), MEDIA["lineitem"])

    @app.get(f"{base}/lineitems/<int:item_id>/lineitem/results")
    def results(item_id: int) -> Response:
        require_token([AGS + "result.readonly"])
        item = item_or_404(item_id)
        wanted = request.args.get("user_id")
        rows = [
            {"id": f"{lms.lineitem_url(item)}/results?user_id={uid}", "userId": uid,
             "resultScore": score, "resultMaximum": item.score_maximum,
             "comment": item.comments.get(uid, ""), "scoreOf": lms.lineitem_url(item),
             "timestamp": "2026-11-20T10:00:00+00:00"}
            for uid, score in item.scores.items()
            if score is not None and (wanted is None or uid == wanted)
        ]
        return _json(rows, MEDIA["results"])

    @app.post(f"{base}/lineitems/<int:item_id>/lineitem/scores")
    def scores(item_id: int) -> Response:
        require_token([AGS + "score"])
        item = item_or_404(item_id)
        body = request.get_json(force=True, silent=True) or {}
        user = course.user(str(body.get("userId", "")))
        if user is None:
            abort(400, "userId is not a member of this course")
        try:
            given = body.get("scoreGiven")
            points = None if given is None else (
                float(given) / float(body["scoreMaximum"]) * item.score_maximum)
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            abort(400, "scoreGiven needs a positive numeric scoreMaximum")
        with course.lock:
            item.scores[user.user_id] = points
            if body.get("comment"):
                item.comments[user.user_id] = str(body["comment"])
        return Response("", status=200, content_type=f"{MEDIA['score']}; charset=utf-8")

    @app.get(f"{base}/memberships")
    def memberships() -> Response:
        require_token([NRPS_SCOPE])
        members = [
            {"status": "Active", "roles": [user.role], "user_id": user.user_id,
             "lis_person_sourcedid": "", "name": user.name, "given_name": user.given_name,
             "family_name": user.family_name, "email": user.email,
             "ext_user_username": user.username}
            for user in course.members
        ]
        page, headers = _paged(lms, members, lms.course_url("/memberships"))
        body = {"id": lms.course_url("/memberships"),
                "context": {"id": course.context_id, "label": course.label,
                            "title": course.title},
                "members": page}
        return _json(body, MEDIA["members"], headers=headers)

    @app.post("/deep-link-return")
    def deep_link_return() -> BaseResponse:
        try:
            items = lms.config().validate_deeplinking_resp({"JWT": request.form.get("JWT", "")})
        except Exception as exc:
            abort(400, f"Deep-linking response refused: {exc}")
        with course.lock:
            course.placed_links.extend(items)
        return redirect("/", code=303)

    return app


# --- running both -----------------------------------------------------------------------------


def practice_key(data_dir: Path) -> str:
    """The practice LMS's RSA key, kept (0600) so restarts keep the same kid."""
    path = data_dir / "practice_lms_key.pem"
    if not path.exists():
        key = jwk.JWK.generate(kty="RSA", size=2048)
        write_secret(path, key.export_to_pem(private_key=True, password=None))
    return read_secret(path).decode()


def prepare_database(runtime: Runtime) -> None:
    """Bring the demo database up to date (the same migrations `lti-tool db upgrade` runs)."""
    upgrade(runtime.engine)


def _placeholder_app(environ: dict, start_response: Callable) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


def _bind(host: str, port: int) -> BaseWSGIServer:
    """Listen first (an OSError names the port), then hand the socket to werkzeug, whose
    own bind would print and exit instead of raising."""
    listener = socket.create_server((host, port))
    try:
        return make_server(host, listener.getsockname()[1], _placeholder_app, threaded=True,
                           fd=listener.fileno(), request_handler=RedactingRequestHandler)
    finally:
        listener.close()  # werkzeug holds its own duplicate of the descriptor


@dataclass
class Demo:
    """Both servers, bound and serving in daemon threads."""

    tool_server: BaseWSGIServer
    lms_server: BaseWSGIServer
    runtime: Runtime
    lms: PracticeLms
    threads: list[threading.Thread]
    jobs: Any = None  # the in-process job runner (grade passback within seconds of a pass)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def tool_url(self) -> str:
        return self.lms.tool_url

    @property
    def lms_url(self) -> str:
        return self.lms.lms_url

    def stop(self) -> None:
        if self.jobs is not None:
            self.jobs.stop()
        for server in (self.tool_server, self.lms_server):
            server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join(timeout=5)
        self.runtime.engine.dispose()


def _prepare(directory: Path, database: str, host: str, tool_server: BaseWSGIServer,
             lms_server: BaseWSGIServer) -> tuple[Runtime, PracticeLms]:
    """Settings for the bound ports, an up-to-date database, the seed, the practice LMS."""
    tool_url = f"http://{host}:{tool_server.socket.getsockname()[1]}"
    lms_url = f"http://{host}:{lms_server.socket.getsockname()[1]}"
    # The practice LMS listens on loopback: outbound calls may reach it (that port only).
    # (the operator's own setting, not the allowance an earlier demo run wrote to its file)
    allow = ",".join(filter(None, [load_settings(environ=dict(os.environ)).outbound_allow,
                                   f"{host}:{lms_server.socket.getsockname()[1]}"]))
    chosen = {
        "database_url": f"sqlite:///{(directory / database).resolve()}",
        "base_url": tool_url,
        "data_dir": str((directory / "instance").resolve()),
        "outbound_allow": allow,
        # The fictitious Example University's region and legal identifier (a European
        # Digital Credential requires one of its issuer), so the demo's Europass export works.
        "issuer_region": "İzmir",
        "issuer_legal_identifier": "TR-DEMO-0000000001",
    }
    settings = load_settings(overrides=chosen)
    write_demo_config(directory, chosen)
    runtime = build_runtime(settings)
    prepare_database(runtime)
    lms = PracticeLms(lms_url=lms_url, tool_url=tool_url,
                      private_pem=practice_key(Path(settings.data_dir)),
                      course=practice_course())
    with transaction(runtime.sessions) as db:
        run_tool_seed(SeedContext(db=db, settings=settings, course=lms.course, lms_url=lms_url))
    return runtime, lms


def write_demo_config(directory: Path, values: dict[str, str]) -> Path:
    """`lti_tool_demo.toml`: the demo's database, URL and key folder, read by every command
    run in this folder (settings.DEMO_CONFIG)."""
    lines = ["# Written by `lti-tool demo`: commands run in this folder use the demo's data.",
             *(f"{key} = {json.dumps(value)}" for key, value in sorted(values.items()))]
    path = directory / DEMO_CONFIG
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start_demo(*, directory: Path, port: int = 8000, lms_port: int = 8001,
               database: str = "lti_tool_demo.db", host: str = "127.0.0.1") -> Demo:
    """Bind both ports (0 picks free ones), seed, and serve in background threads."""
    tool_server = _bind(host, port)
    try:
        lms_server = _bind(host, lms_port)
    except BaseException:
        tool_server.server_close()
        raise
    try:
        runtime, lms = _prepare(directory, database, host, tool_server, lms_server)
    except BaseException:
        tool_server.server_close()
        lms_server.server_close()
        raise
    tool_server.app = create_app(runtime=runtime)
    lms_server.app = create_practice_lms(lms)
    threads = [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                daemon=True)
               for server in (tool_server, lms_server)]
    for thread in threads:
        thread.start()

    jobs = in_process_runner(runtime).start()
    return Demo(tool_server, lms_server, runtime, lms, threads, jobs)


def run_demo(*, port: int = 8000, lms_port: int = 8001,
             database: str = "lti_tool_demo.db") -> None:
    """The `lti-tool demo` command: start, print both URLs, wait for Ctrl-C."""
    try:
        demo = start_demo(directory=Path.cwd(), port=port, lms_port=lms_port, database=database)
    except OSError as exc:
        raise click.ClickException(f"Cannot start the demo: {exc.strerror or exc} (is another "
                                   f"program using port {port} or {lms_port}? Choose others with "
                                   "--port / --lms-port.)") from exc
    click.echo(f"Tool:          {demo.tool_url}  (database {demo.settings.database_url})")
    click.echo(f"Practice LMS:  {demo.lms_url}  <- open this and press a Launch button")
    click.echo("Press Ctrl-C to stop both.")
    stop = threading.Event()
    # Ctrl-C, and a service manager's SIGTERM, stop both servers the same way.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    finally:
        click.echo("Stopping the tool and the practice LMS…")
        demo.stop()
