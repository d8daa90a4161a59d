"""A fake LMS (Moodle- or Canvas-flavoured) for tests and benchmarks, served on loopback.

It answers with the shapes of the captured messages (see `data.py`), pages every list with
`Link` headers (Moodle's malformed ones for AGS: typographic quotes and `&amp;`; well-formed
for NRPS and for Canvas), verifies the tool's client assertion with jwcrypto against the tool's
JWKS, and can be told to fail: `fake.fail(path_part, status=429, retry_after=1, times=2)`,
`fake.fail(path_part, delay=2)` (slow), `fake.fail(path_part, drop=True)` (drop connection);
`method="POST"` limits a fault to one method.

As a Moodle it also plays the platform side of LTI Dynamic Registration and deep linking: its
OpenID configuration (the captured one, moved to its own address), the registration endpoint
(which creates a *pending* tool type, as Moodle does), its platform keyset (`platform_jwks`,
e.g. the keys of the `lti1p3platform` package that signs the launches), and the deep-linking
return, which verifies the tool's signed response and records the activity it places.

Grade passback is served as the LMSs do it: a POST to the line item container creates a line
item (201 with the stored item, `lineitem` scope and the line item media type required), and a
score POST is checked for its media type, scope and fields before it is stored (Moodle answers
200 with an empty body, Canvas 200 with JSON holding `resultUrl`); a bad one gets 4xx.

    fake = FakeLms(kind="moodle", course=moodle_course(), tool_jwks=lambda: {...})
    with fake.running():
        ... fake.base_url ...
"""

from __future__ import annotations

import copy
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask, Response, abort, jsonify, request
from jwcrypto import jwk, jwt
from werkzeug.serving import WSGIRequestHandler, make_server

from testkit.fakelms.data import CourseData, LineItem, Result, moodle_course, moodle_fixture

__all__ = ["FakeLms", "Fault", "moodle_course"]

AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
ALL_SCOPES = frozenset({AGS + "lineitem", AGS + "lineitem.readonly", AGS + "result.readonly",
                        AGS + "score", NRPS_SCOPE})
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json; charset=utf-8"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
ACTIVITY_PROGRESS = frozenset({"Initialized", "Started", "InProgress", "Submitted", "Completed"})
GRADING_PROGRESS = frozenset({"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"})
MOJIBAKE_OPEN = "“".encode().decode("latin-1")
MOJIBAKE_CLOSE = "”".encode().decode("latin-1")


@dataclass
class Fault:
    path_part: str
    times: int = 1
    status: int | None = None
    retry_after: str | None = None
    delay: float = 0.0
    drop: bool = False
    method: str | None = None  # None: any method
    # hold=True: the request waits until the test calls `release()`; `reached` is set when the
    # request arrives, so a test waits on the state instead of on timing.
    hold: bool = False
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


@dataclass
class FakeLms:
    kind: str = "moodle"  # moodle | canvas
    course: CourseData = field(default_factory=moodle_course)
    tool_jwks: Callable[[], dict] = dict
    client_id: str = "wIHNTU76CCVPeFh"
    allowed_scopes: frozenset[str] = ALL_SCOPES
    ws_token: str = "ws-secret"
    ws_functions: set[str] | None = None  # None: every function is enabled
    # Functions whose capability the token's user lacks (Moodle's required_capability_exception).
    ws_denied: set[str] = field(default_factory=set)
    canvas_token: str = "canvas-secret"
    ags_page: int = 10
    nrps_page: int = 10
    token_lifetime: int = 3600
    base_url: str = ""
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)
    tokens: dict[str, frozenset[str]] = field(default_factory=dict)
    assertions: list[dict] = field(default_factory=list)
    posted_scores: list[dict] = field(default_factory=list)
    created_line_items: list[dict] = field(default_factory=list)
    # Moodle as the LTI platform: Dynamic Registration, keyset, deep-linking return
    platform_jwks: Callable[[], dict] = dict
    registration_token: str = "reg-token-123"
    deployment_id: str = "1"  # Moodle: the tool type id
    tool_types: list[dict] = field(default_factory=list)
    placed_items: list[dict] = field(default_factory=list)
    ws_calls: list[dict] = field(default_factory=list)  # web-service calls, without the token

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.app = _build_app(self)

    # -- configuration -------------------------------------------------------------------------
    def fail(self, path_part: str, **kwargs: Any) -> Fault:
        fault = Fault(path_part, **kwargs)
        self.faults.append(fault)
        return fault

    def hold(self, path_part: str, **kwargs: Any) -> Fault:
        """Hold the next request to `path_part` until `fault.release()` (see `Fault.hold`)."""
        return self.fail(path_part, hold=True, **kwargs)

    def count(self, path_part: str = "", method: str | None = None) -> int:
        return sum(1 for m, p in self.log
                   if path_part in p and (method is None or m == method))

    # -- URLs ----------------------------------------------------------------------------------
    @property
    def token_url(self) -> str:
        path = "/mod/lti/token.php" if self.kind == "moodle" else "/login/oauth2/token"
        return self.base_url + path

    @property
    def lineitems_url(self) -> str:
        if self.kind == "moodle":
            return (f"{self.base_url}/mod/lti/services.php/{self.course.course_id}"
                    "/lineitems?type_id=1")
        return f"{self.base_url}/api/lti/courses/{self.course.course_id}/line_items"

    def lineitem_url(self, item_id: int) -> str:
        if self.kind == "moodle":
            return (f"{self.base_url}/mod/lti/services.php/{self.course.course_id}/lineitems/"
                    f"{item_id}/lineitem?type_id=1")
        return f"{self.base_url}/api/lti/courses/{self.course.course_id}/line_items/{item_id}"

    @property
    def memberships_url(self) -> str:
        if self.kind == "moodle":
            return (f"{self.base_url}/mod/lti/services.php/CourseSection/"
                    f"{self.course.course_id}/bindings/1/memberships")
        return f"{self.base_url}/api/lti/courses/{self.course.course_id}/names_and_roles"

    # -- serving -------------------------------------------------------------------------------
    @contextmanager
    def running(self) -> Iterator[FakeLms]:
        server = make_server("127.0.0.1", 0, self.app, threaded=True,
                             request_handler=_KeepAliveHandler)
        self.base_url = f"http://127.0.0.1:{server.server_port}"
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            thread.join(5)


class _KeepAliveHandler(WSGIRequestHandler):
    """HTTP/1.1, as real LMSs answer (werkzeug's default is HTTP/1.0). werkzeug still closes
    each connection after its reply (`Connection: close`), so every request to the fake pays
    a TCP connect, the tool's and the benchmarks' references alike; against a server that
    keeps connections alive the guarded outbound client reuses them."""

    protocol_version = "HTTP/1.1"


# ---------------------------------------------------------------------------------------------


def _page(entries: list, default: int) -> tuple[list, int, int | None]:
    """The slice `from`/`limit` of the query asks for (the LMS's page size by default)."""
    start = max(0, request.args.get("from", 0, type=int) or 0)
    size = request.args.get("limit", default, type=int) or default
    size = max(1, min(size, 1000))
    chunk = entries[start:start + size]
    following = start + size if start + size < len(entries) else None
    return chunk, size, following


def _moodle_link(base: str, size: int, following: int | None, total: int) -> str | None:
    """Moodle's AGS `Link`: HTML-escaped `&amp;` and typographic quotes (sent as UTF-8)."""
    if following is None:
        return None
    sep = "&amp;" if "?" in base else "?"

    def rel(name: str, start: int) -> str:
        url = f"{base}{sep}limit={size}&amp;from={start}"
        return f"<{url}>; rel={MOJIBAKE_OPEN}{name}{MOJIBAKE_CLOSE}"

    last = max(0, (total - 1) // size * size)
    return ", ".join([rel("first", 0), rel("next", following), rel("last", last)])


def _good_link(base: str, size: int, following: int | None, param: str = "limit",
               start: str = "from") -> str | None:
    if following is None:
        return None
    sep = "&" if "?" in base else "?"
    return f'<{base}{sep}{param}={size}&{start}={following}>; rel="next"'


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _lineitem_problem(body: Any) -> str | None:
    """Why a line item POST body is refused (AGS 2.0: label and a positive scoreMaximum)."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    if not isinstance(body.get("label"), str) or not body["label"].strip():
        return "label is required"
    if not _number(body.get("scoreMaximum")) or body["scoreMaximum"] <= 0:
        return "scoreMaximum must be a number above 0"
    return None


def _score_problem(body: Any) -> str | None:
    """Why a score POST body is refused (AGS 2.0 score service: required fields and values)."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    if not isinstance(body.get("userId"), str) or not body["userId"]:
        return "userId is required (a string)"
    if body.get("activityProgress") not in ACTIVITY_PROGRESS:
        return f"activityProgress {body.get('activityProgress')!r} is not allowed"
    if body.get("gradingProgress") not in GRADING_PROGRESS:
        return f"gradingProgress {body.get('gradingProgress')!r} is not allowed"
    stamp = body.get("timestamp")
    try:
        parsed = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return f"timestamp {stamp!r} is not ISO 8601"
    if not isinstance(stamp, str) or parsed.tzinfo is None:
        return "timestamp needs a time zone"
    if "scoreGiven" in body:
        given, maximum = body["scoreGiven"], body.get("scoreMaximum")
        if not _number(given) or not _number(maximum) or maximum <= 0 or given < 0:
            return "scoreGiven needs a number >= 0 and scoreMaximum a number above 0"
    return None


_GRADEBOOK_FUNCTIONS = ("gradereport_user_get_grade_items", "core_grades_get_gradeitems")


def _ws_grade_item_ids(course: CourseData) -> list[int]:
    reply = course.ws_replies.get("core_grades_get_gradeitems")
    items = reply.get("gradeItems", []) if isinstance(reply, dict) else []
    return [int(i["id"]) for i in items if str(i.get("id", "")).isdigit()]


def _with_created_items(fake: FakeLms, function: str, reply: Any) -> Any:
    """The gradebook as Moodle lists it after the tool created line items through AGS: each
    is a manual grade item (README of the fixtures) in the captured shape of the earlier
    "Tool-created line item" (grade item 9), with the scores the tool posted.

    Not captured for a new item: moodle/moodle mod/lti/service/gradebookservices/classes/local/
    resources/lineitems.php (get_json_for_post_request) inserts a `grade_item` with itemtype
    `manual`, itemname = label, grademax = scoreMaximum, idnumber = resourceId, and names the
    line item `<endpoint>/<grade item id>/lineitem?type_id=<type>`."""
    captured = max(_ws_grade_item_ids(fake.course), default=0)
    created = [i for i in fake.course.line_items if i.id > captured]
    if not created or not isinstance(reply, dict):
        return reply
    reply = copy.deepcopy(reply)
    if function == "core_grades_get_gradeitems":
        category = reply["gradeItems"][0]["category"] if reply["gradeItems"] else ""
        reply["gradeItems"] += [{"id": str(i.id), "itemname": i.label, "category": category}
                                for i in created]
        return reply
    template = next(g for g in reply["usergrades"][0]["gradeitems"] if g["id"] == 9)
    for user in reply["usergrades"]:
        total = user["gradeitems"].pop()  # the course total stays last
        for item in created:
            result = fake.course.results.get(item.id, {}).get(str(user["userid"]))
            score = None if result is None else result.score
            user["gradeitems"].append(dict(
                copy.deepcopy(template), id=item.id, itemname=item.label,
                grademax=item.score_maximum, graderaw=score, idnumber=item.resource_id,
                status="graded" if score is not None else "novalue",
                gradeformatted="-" if score is None else f"{score:.2f}"))
        user["gradeitems"].append(total)
    return reply


def _grading_definitions(stored: dict, values: Any) -> dict:
    """`core_grading_get_definitions` as Moodle 5.1 answers it: the requested areas; with
    `activeonly=1`, the exception of the capture as soon as one area has no active method."""
    cmids = {int(v) for k, v in values.items() if k.startswith("cmids[") and str(v).isdigit()}
    areas = [a for a in stored.get("areas", []) if a.get("cmid") in cmids]
    if values.get("activeonly") == "1":
        if any(a.get("activemethod") is None for a in areas):
            return moodle_fixture("ws_core_grading_get_definitions_activeonly.json")[
                "activeonly_1"]["response"]
        areas = [dict(a, definitions=[d for d in a.get("definitions", [])
                                      if d.get("method") == a.get("activemethod")])
                 for a in areas]
    return {"areas": areas, "warnings": stored.get("warnings", [])}


CAPTURED_ORIGIN = "http://127.0.0.1:8100"  # the captured Moodle's wwwroot
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
DEEP_LINKING = "https://purl.imsglobal.org/spec/lti-dl/claim/"


def _platform_routes(app: Flask, fake: FakeLms) -> None:
    """Moodle's LTI platform endpoints used by Dynamic Registration and deep linking."""

    @app.get("/mod/lti/openid-configuration.php")
    def openid_configuration() -> Response:
        text = json.dumps(moodle_fixture("platform_openid_configuration.json"))
        return jsonify(json.loads(text.replace(CAPTURED_ORIGIN, fake.base_url)))

    @app.get("/mod/lti/certs.php")
    def certs() -> Response:
        return jsonify(fake.platform_jwks())

    @app.post("/mod/lti/openid-registration.php")
    def openid_registration() -> Any:
        # No capture of this exchange: moodle/moodle mod/lti/openid-registration.php answers
        # 401 `missing_registration_token` without a Bearer header; otherwise it validates the
        # token (registration_helper::validate_registration_token), turns the payload into a
        # tool type with `state = LTI_TOOL_STATE_PENDING` (an admin activates it in Manage
        # tools) and answers registration_helper::config_to_registration($config, $typeid):
        # the registration echoed with `client_id` and the tool configuration's
        # `deployment_id` (the type id). The README's `domain_targetlinkuri_mismatch` (400) is
        # the captured refusal of a domain without the port.
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return Response("missing_registration_token", 401)
        if header.removeprefix("Bearer ").strip() != fake.registration_token:
            return Response("invalid_registration_token", 401)
        sent = request.get_json(force=True, silent=True)
        config = sent.get(TOOL_CONFIGURATION) if isinstance(sent, dict) else None
        if not isinstance(config, dict):
            return Response("missing_tool_configuration", 400)
        if str(config.get("domain", "")) not in str(config.get("target_link_uri", "")):
            return Response("domain_targetlinkuri_mismatch", 400)
        reply = copy.deepcopy(sent)
        reply["client_id"] = fake.client_id
        reply[TOOL_CONFIGURATION].update(deployment_id=fake.deployment_id, version="1.3.0")
        fake.tool_types.append({"id": fake.deployment_id, "state": "pending",
                                "registration": sent})
        return jsonify(reply)

    @app.post("/mod/lti/contentitem_return.php")
    def contentitem_return() -> Any:
        # No capture of this exchange: moodle/moodle mod/lti/contentitem_return.php reads the
        # `JWT` form field (`course` and `id` in the query) and lti_convert_from_jwt verifies
        # it with the tool's public keyset before the activity form is filled from its items.
        try:
            keys = jwk.JWKSet.from_json(json.dumps(fake.tool_jwks()))
            checked = jwt.JWT(jwt=request.form.get("JWT", ""), key=keys, algs=["RS256"],
                              check_claims={"iss": fake.client_id, "aud": fake.base_url,
                                            "exp": None})
        except Exception as exc:  # any verification failure: Moodle shows an error
            return Response(f"invalid JWT: {exc}", 400)
        claims = json.loads(checked.claims)
        items = claims.get(DEEP_LINKING + "content_items") or []
        fake.placed_items.extend(dict(item, course=request.args.get("course"))
                                 for item in items)
        return Response("<p>Successfully fetched tool configuration</p>", 200)


def _build_app(fake: FakeLms) -> Flask:
    app = Flask("fakelms")
    app.json.sort_keys = False  # keep the captured key order (and answer faster)

    @app.before_request
    def _faults_and_log():
        with fake._lock:
            fake.log.append((request.method, request.full_path))
            fault = next((f for f in fake.faults if f.times > 0
                          and f.path_part in request.full_path
                          and f.method in (None, request.method)), None)
            if fault is not None:
                fault.times -= 1
        if fault is None:
            return None
        if fault.hold:
            fault.reached.set()
            fault.released.wait(60)
        if fault.delay:
            time.sleep(fault.delay)
        if fault.drop:
            sock = request.environ.get("werkzeug.socket")
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            abort(500)
        if fault.status:
            reply = Response("simulated failure", status=fault.status)
            if fault.retry_after is not None:
                reply.headers["Retry-After"] = fault.retry_after
            return reply
        return None

    _platform_routes(app, fake)

    # -- OAuth 2 token -------------------------------------------------------------------------
    def token() -> Any:
        form = request.form
        if form.get("grant_type") != "client_credentials" or form.get(
                "client_assertion_type") != ASSERTION_TYPE:
            return jsonify(error="unsupported_grant_type"), 400
        try:
            keys = jwk.JWKSet.from_json(json.dumps(fake.tool_jwks()))
            checked = jwt.JWT(jwt=form.get("client_assertion", ""), key=keys, algs=["RS256"],
                              check_claims={"iss": fake.client_id, "sub": fake.client_id,
                                            "aud": fake.token_url, "exp": None, "jti": None})
        except Exception as exc:  # any verification failure is the client's fault
            return jsonify(error="invalid_client", error_description=str(exc)), 401
        claims = json.loads(checked.claims)
        fake.assertions.append({"claims": claims, "header": json.loads(checked.header)})
        wanted = frozenset(form.get("scope", "").split())
        if not wanted or not wanted <= fake.allowed_scopes:
            return jsonify(error="invalid_scope"), 400
        value = secrets.token_hex(16)
        fake.tokens[value] = wanted
        return jsonify(access_token=value, token_type="Bearer", expires_in=fake.token_lifetime,
                       scope=" ".join(sorted(wanted)))

    app.add_url_rule("/mod/lti/token.php", "moodle_token", token, methods=["POST"])
    app.add_url_rule("/login/oauth2/token", "canvas_token", token, methods=["POST"])

    def bearer(*acceptable: str) -> None:
        header = request.headers.get("Authorization", "")
        scopes = fake.tokens.get(header.removeprefix("Bearer ").strip())
        if scopes is None:
            abort(Response("invalid or expired token", 401))
        if not scopes & set(acceptable):
            abort(Response(f"token lacks scope {acceptable[0]}", 403))

    def find_item(item_id: int) -> LineItem:
        item = next((i for i in fake.course.line_items if i.id == item_id), None)
        if item is None:
            abort(404)
        return item

    def paged(entries: list, default: int, malformed: bool, content_type: str,
              wrap: Callable[[list], Any] = lambda x: x,
              render: Callable[[Any], Any] = lambda x: x) -> Response:
        chunk, size, following = _page(entries, default)
        reply = jsonify(wrap([render(entry) for entry in chunk]))
        reply.headers["Content-Type"] = content_type + "; charset=utf-8"
        base = request.base_url
        keep = [f"{k}={v}" for k, v in request.args.items() if k not in ("limit", "from")]
        if keep:
            base += "?" + "&".join(keep)
        link = (_moodle_link(base, size, following, len(entries)) if malformed
                else _good_link(base, size, following))
        if link:
            reply.headers["Link"] = link
        return reply

    # -- AGS -----------------------------------------------------------------------------------
    def lineitems(**_: Any) -> Response:
        bearer(AGS + "lineitem", AGS + "lineitem.readonly")
        items = fake.course.line_items
        for arg, attr in (("resource_link_id", "resource_link_id"), ("tag", "tag"),
                          ("resource_id", "resource_id")):
            if arg in request.args:
                items = [i for i in items if getattr(i, attr) == request.args[arg]]
        return paged([i.as_json(fake.lineitem_url(i.id)) for i in items], fake.ags_page,
                     fake.kind == "moodle", "application/vnd.ims.lis.v2.lineitemcontainer+json")

    def results(item_id: int, **_: Any) -> Response:
        bearer(AGS + "result.readonly")
        item = find_item(item_id)
        url = fake.lineitem_url(item.id)
        stored = fake.course.results.get(item.id, {})
        wanted = request.args.get("user_id")
        entries = list(stored.items()) if wanted is None else [
            (wanted, stored[wanted])] if wanted in stored else []

        def render(entry: tuple[str, Result]) -> dict:
            user_id, result = entry
            return {
                "id": url.replace("/lineitem", "/lineitem/results") + f"&user_id={user_id}",
                "userId": user_id, "resultScore": result.score, "resultMaximum": result.maximum,
                "comment": result.comment, "scoreOf": url, "timestamp": result.timestamp}

        return paged(entries, fake.ags_page, fake.kind == "moodle",
                     "application/vnd.ims.lis.v2.resultcontainer+json", render=render)

    def scores(item_id: int, **_: Any) -> Response:
        bearer(AGS + "score")
        item = find_item(item_id)
        if request.mimetype != "application/vnd.ims.lis.v1.score+json":
            return Response(f"expected {SCORE_TYPE.split(';')[0]}, got {request.mimetype}", 415)
        body = request.get_json(force=True, silent=True)
        problem = _score_problem(body)
        if problem:
            return Response(problem, 400)
        fake.posted_scores.append(body)
        fake.course.results.setdefault(item.id, {})[str(body.get("userId"))] = Result(
            body.get("scoreGiven"), body.get("scoreMaximum", item.score_maximum),
            body.get("timestamp", ""), body.get("comment", ""))
        if fake.kind == "moodle":  # Moodle: 200 with an empty body
            return Response("", 200, content_type=SCORE_TYPE)
        return jsonify(resultUrl=fake.lineitem_url(item.id) + f"/results/{body.get('userId')}")

    def create_lineitem(**_: Any) -> Response:
        """POST to the container: Moodle's `lineitem_create` exchange (201, the item with id)."""
        bearer(AGS + "lineitem")
        if request.mimetype != LINEITEM_TYPE:
            return Response(f"expected {LINEITEM_TYPE}, got {request.mimetype}", 415)
        body = request.get_json(force=True, silent=True)
        problem = _lineitem_problem(body)
        if problem:
            return Response(problem, 400)
        with fake._lock:
            # A Moodle line item IS a grade item (lineitems.php inserts a grade_item and uses
            # its id in the URL): the next id after every grade item of the course (the web
            # services list some AGS does not), so it never takes another's.
            item = LineItem(id=max([i.id for i in fake.course.line_items]
                                   + _ws_grade_item_ids(fake.course), default=0) + 1,
                            label=body["label"], score_maximum=body["scoreMaximum"],
                            resource_id=str(body.get("resourceId", "")),
                            tag=str(body.get("tag", "")),
                            resource_link_id=body.get("resourceLinkId"))
            fake.course.line_items.append(item)
            if fake.kind == "canvas" and not body.get("resourceLinkId"):
                # Canvas makes an assignment for a line item without a resource link
                # (Lti::LineItem.create_line_item!): name = label, no submission.
                fake.course.canvas_assignments.append({
                    "id": 1000 + item.id, "name": body["label"], "course_id": 311,
                    "points_possible": float(body["scoreMaximum"]), "published": True,
                    "submission_types": ["none"], "omit_from_final_grade": False,
                    "updated_at": "2026-11-20T10:00:00Z"})
        created = dict(body, id=fake.lineitem_url(item.id))
        fake.created_line_items.append(created)
        reply = jsonify(created)
        reply.status_code = 201
        reply.headers["Content-Type"] = LINEITEM_TYPE + "; charset=utf-8"
        return reply

    for prefix, item_part in (("/mod/lti/services.php/<course>/lineitems", "/lineitem"),
                              ("/api/lti/courses/<course>/line_items", "")):
        item_path = prefix + "/<int:item_id>" + item_part
        app.add_url_rule(prefix, f"li{prefix}", lineitems)
        app.add_url_rule(prefix, f"lic{prefix}", create_lineitem, methods=["POST"])
        app.add_url_rule(item_path + "/results", f"res{prefix}", results)
        app.add_url_rule(item_path + "/scores", f"sc{prefix}", scores, methods=["POST"])

    # -- NRPS ----------------------------------------------------------------------------------
    def memberships(**_: Any) -> Response:
        bearer(NRPS_SCOPE)
        context = {"id": fake.course.course_id, "label": "LTI101", "title": "LTI Test Course 101"}
        return paged(fake.course.members, fake.nrps_page, False,
                     "application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
                     lambda chunk: {"id": request.base_url, "context": context,
                                    "members": chunk})

    app.add_url_rule("/mod/lti/services.php/CourseSection/<course>/bindings/<binding>/memberships",
                     "nrps_moodle", memberships)
    app.add_url_rule("/api/lti/courses/<course>/names_and_roles", "nrps_canvas", memberships)

    # -- Moodle web services -------------------------------------------------------------------
    @app.post("/webservice/rest/server.php")
    def webservice() -> Any:
        function = request.values.get("wsfunction", "")
        if request.values.get("wstoken") != fake.ws_token:
            return jsonify(exception="moodle_exception", errorcode="invalidtoken",
                           message="Invalid token - token not found")
        enabled = fake.ws_functions
        if function not in fake.course.ws_replies or (
                enabled is not None and function not in enabled):
            return jsonify(exception="webservice_access_exception", errorcode="accessexception",
                           message="Access control exception")
        if function in fake.ws_denied:
            return jsonify(exception="required_capability_exception", errorcode="nopermissions",
                           message="Sorry, but you do not currently have permissions to do "
                                   "that (View all grades).")
        fake.ws_calls.append({k: v for k, v in request.values.items() if k != "wstoken"})
        reply = fake.course.ws_replies[function]
        if fake.kind == "moodle" and function in _GRADEBOOK_FUNCTIONS:
            reply = _with_created_items(fake, function, reply)
        if function == "core_grading_get_definitions":
            return jsonify(_grading_definitions(reply, request.values))
        if function == "core_webservice_get_site_info" and enabled is not None:
            # The captured site info, listing only the functions this fake's service offers.
            reply = dict(reply, functions=[f for f in reply.get("functions", [])
                                           if f.get("name") in enabled])
        return jsonify(reply(request.values) if callable(reply) else reply)

    # -- Canvas REST ---------------------------------------------------------------------------
    def canvas_auth() -> None:
        if request.headers.get("Authorization") != f"Bearer {fake.canvas_token}":
            abort(Response('{"errors":[{"message":"Invalid access token."}]}', 401))

    def canvas_list(entries: list, wrap: Callable[[list], Any] = lambda x: x) -> Response:
        canvas_auth()
        per_page = max(1, min(request.args.get("per_page", 10, type=int), 100))
        page = max(1, request.args.get("page", 1, type=int))
        chunk = entries[(page - 1) * per_page: page * per_page]
        reply = jsonify(wrap(chunk))
        if page * per_page < len(entries):
            args = [(k, v) for k, v in request.args.items(multi=True) if k != "page"]
            query = "&".join(f"{k}={v}" for k, v in args) + f"&page={page + 1}"
            first = query.rsplit("&page", 1)[0] + "&page=1"
            reply.headers["Link"] = (f'<{request.base_url}?{query}>; rel="next", '
                                     f'<{request.base_url}?{first}>; rel="first"')
        return reply

    @app.get("/api/v1/courses/<course>/users")
    def canvas_users(course: str) -> Response:
        return canvas_list(fake.course.canvas_users)

    @app.get("/api/v1/courses/<course>/assignments")
    def canvas_assignments(course: str) -> Response:
        return canvas_list(fake.course.canvas_assignments)

    @app.put("/api/v1/courses/<course>/assignments/<int:assignment_id>")
    def canvas_edit_assignment(course: str, assignment_id: int) -> Response:
        """Canvas's "Edit an assignment" (only `assignment[omit_from_final_grade]` is used)."""
        canvas_auth()
        for assignment in fake.course.canvas_assignments:
            if assignment["id"] == assignment_id:
                value = request.values.get("assignment[omit_from_final_grade]")
                if value is not None:
                    assignment["omit_from_final_grade"] = value == "true"
                return jsonify(assignment)
        abort(Response('{"errors":[{"message":"The specified resource does not exist."}]}', 404))

    @app.get("/api/v1/courses/<course>/students/submissions")
    def canvas_submissions(course: str) -> Response:
        entries = fake.course.canvas_submissions
        since = request.args.get("graded_since")
        if since:
            floor = datetime.fromisoformat(since.replace("Z", "+00:00"))
            entries = [s for s in entries if s.get("graded_at") and datetime.fromisoformat(
                s["graded_at"].replace("Z", "+00:00")) > floor]
        if "rubric_assessment" not in request.args.getlist("include[]"):
            entries = [{k: v for k, v in s.items() if k != "rubric_assessment"} for s in entries]
        return canvas_list(entries)

    @app.get("/api/v1/courses/<course>/outcome_results")
    def canvas_outcome_results(course: str) -> Response:
        return canvas_list(fake.course.canvas_outcome_results,
                           lambda chunk: {"outcome_results": chunk,
                                          "linked": {"outcomes": fake.course.canvas_outcomes}})

    return app
