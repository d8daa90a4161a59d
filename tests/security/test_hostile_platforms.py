"""Issue 11's outbound attacks, reproduced against the real tool over HTTP.

Three loopback servers: a **victim** LMS registered by an operator (its token endpoint and
services record every request), a **stranger** who tries to abuse the tool, and an
**internal** server standing for what sits behind the tool's firewall (an admin page with a
secret). The tool runs in a werkzeug server thread with a public-looking
`LTI_TOOL_BASE_URL` and `LTI_TOOL_OUTBOUND_ALLOW` naming only the victim's port. Each test
mounts one attack and asserts that it fails AND that the victim's token endpoint and the
internal server received nothing.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from flask import Flask, Response, jsonify, request
from sqlalchemy import func, select
from werkzeug.serving import make_server

from lti_tool.grades.sync import sync_context
from lti_tool.launch.platforms import PlatformSpec, register_platform
from lti_tool.lms.token import CACHE, publish_signing_key
from lti_tool.runtime import Runtime
from lti_tool.store.models.core import (
    Context,
    Person,
    Platform,
)
from lti_tool.store.models.grades import SyncRun
from lti_tool.web import create_app
from testkit.lti import platform_key, sign

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_SCOPES = ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
              "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"]
PUBLIC_BASE = "https://tool.example.edu"
SECRET = "internal-admin-secret-7f3a"
KEY = platform_key("hostile-victim")


class Server:
    """A Flask app on a loopback port in a thread; `hits` records (method, path) of each call."""

    def __init__(self, name: str, host: str = "127.0.0.1") -> None:
        self.app = Flask(name)
        self.hits: list[tuple[str, str]] = []
        self.app.before_request(lambda: self.hits.append((request.method, request.path)))
        self._server = make_server(host, 0, self.app, threaded=True)
        self.port = self._server.server_port
        self.host = host
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def route(self, path: str, view: Callable, methods: tuple[str, ...] = ("GET",)) -> None:
        self.app.add_url_rule(path, path, view, methods=list(methods))

    def start(self) -> Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


@dataclass
class World:
    runtime: Runtime
    tool: Server
    victim: Server
    stranger: Server
    internal: Server
    victim_platform_id: int
    hostile: dict = field(default_factory=dict)  # how the victim's services misbehave

    @property
    def token_hits(self) -> list:
        return [hit for hit in self.victim.hits if hit[1] == "/token"]

    def assert_untouched(self) -> None:
        assert self.internal.hits == [], self.internal.hits
        assert self.token_hits == [], self.victim.hits

    def count(self, model: type) -> int:
        with self.runtime.sessions() as db:
            return db.scalar(select(func.count()).select_from(model)) or 0


def _victim_services(world_ref: dict, victim: Server) -> None:
    """The victim LMS: a token endpoint and AGS whose replies a test makes hostile."""

    def token() -> Response:
        return jsonify({"access_token": "victim-token", "token_type": "Bearer",
                        "expires_in": 3600, "scope": " ".join(AGS_SCOPES)})

    def lineitems() -> Response:
        mode = world_ref["hostile"].get("lineitems", "ok")
        internal = world_ref["internal_url"]
        if mode == "next":
            response = jsonify([])
            response.headers["Link"] = f'<{internal}/admin?page=2>; rel="next"'
            return response
        if mode == "foreign-id":
            return jsonify([{"id": f"{internal}/admin/lineitem", "label": "Evil",
                             "scoreMaximum": 10}])
        if mode == "redirect":
            return Response(status=302, headers={"Location": internal + "/admin"})
        if mode == "huge":
            return Response((b"[" + b" " * 65536 for _ in range(1024)),
                            mimetype="application/json")
        if mode == "error":
            return Response(f"<h1>Admin</h1><p>{SECRET}</p>", status=500)
        return jsonify([])

    victim.route("/token", token, ("POST",))
    victim.route("/lineitems", lineitems)


def _internal_pages(internal: Server) -> None:
    internal.route("/admin", lambda: f"<p>{SECRET}</p>")
    internal.route("/admin/lineitem/results", lambda: jsonify([]))
    internal.route("/jwks", lambda: jsonify(KEY.jwks))
    internal.route("/.well-known/openid-configuration", lambda: jsonify({}))


@pytest.fixture
def world(runtime: Runtime) -> Iterator[World]:
    CACHE.clear()
    victim, stranger = Server("victim"), Server("stranger", host="127.0.0.2")
    internal = Server("internal")
    ref: dict = {"hostile": {}, "internal_url": internal.url}
    _victim_services(ref, victim)
    _internal_pages(internal)
    settings = dataclasses.replace(
        runtime.settings, base_url=PUBLIC_BASE, outbound_allow=f"127.0.0.1:{victim.port}",
        dynamic_registration="open", sync_after_launch=False)
    tool_runtime = Runtime(settings=settings, engine=runtime.engine, sessions=runtime.sessions)
    tool = Server("tool")
    tool._server.app = create_app(runtime=tool_runtime)
    with tool_runtime.sessions() as db:
        platform = register_platform(db, PlatformSpec(
            issuer=victim.url, client_id="victim-client", auth_login_url=victim.url + "/auth",
            auth_token_url=victim.url + "/token", key_set=KEY.jwks, lms_kind="moodle",
            deployments=["1"], name="Victim University"))
        db.commit()
        platform_id = platform.id
    publish_signing_key(tool_runtime.sessions, settings)
    for server in (victim, stranger, internal, tool):
        server.start()
    world = World(tool_runtime, tool, victim, stranger, internal, platform_id, ref["hostile"])
    yield world
    for server in (victim, stranger, internal, tool):
        server.stop()
    CACHE.clear()


# --- the launch, over HTTP -------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.links += [v for k, v in attrs if k == "href" and v]


def _claims(world: World, **services: dict) -> dict:
    with world.runtime.sessions() as db:
        platform = db.get(Platform, world.victim_platform_id)
        issuer, client_id = platform.issuer, platform.client_id
    now = int(time.time())
    claims = {
        "iss": issuer, "aud": client_id, "sub": "teacher-1", "iat": now, "exp": now + 60,
        LTI + "message_type": "LtiResourceLinkRequest", LTI + "version": "1.3.0",
        LTI + "deployment_id": "1", LTI + "target_link_uri": PUBLIC_BASE + "/lti/launch",
        LTI + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
        LTI + "context": {"id": "course-1", "title": "Course"},
        LTI + "resource_link": {"id": "link-1"},
    }
    claims.update(services)
    return claims


def _launch(world: World, claims: dict) -> requests.Response:
    """Login then launch as the victim's LMS and a browser would, against the tool's port."""
    browser = requests.Session()
    login = browser.get(world.tool.url + "/lti/login", allow_redirects=False, params={
        "iss": claims["iss"], "client_id": claims["aud"], "login_hint": "x",
        "target_link_uri": PUBLIC_BASE + "/lti/launch", "lti_deployment_id": "1"})
    location = login.headers.get("Location")
    if location is None:
        finder = _Links()
        finder.feed(login.text)
        location = next(u for u in finder.links if u.startswith(world.victim.url + "/auth"))
    query = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
    # The tool's base URL is HTTPS, so its cookies are Secure: hand them over explicitly.
    cookies = {c.name: c.value for c in login.cookies}
    return requests.post(world.tool.url + "/lti/launch", allow_redirects=False,
                         headers={"Accept": "application/json"}, cookies=cookies,
                         data={"id_token": sign({**claims, "nonce": query["nonce"]}, KEY),
                               "state": query["state"]})


@pytest.mark.parametrize(("claim", "value"), [
    (AGS, {"scope": AGS_SCOPES, "lineitems": "{internal}/admin"}),
    (AGS, {"scope": AGS_SCOPES, "lineitems": "{victim}/lineitems",
           "lineitem": "{internal}/admin/lineitem"}),
    (NRPS, {"context_memberships_url": "{internal}/admin", "service_versions": ["2.0"]}),
    (AGS, {"scope": AGS_SCOPES, "lineitems": "http://127.1:{internal_port}/admin"}),
])
def test_a_launch_whose_service_claims_name_another_host_is_refused(world, claim, value):
    formatted = {k: v.format(internal=world.internal.url, victim=world.victim.url,
                             internal_port=world.internal.port) if isinstance(v, str) else v
                 for k, v in value.items()}
    reply = _launch(world, _claims(world, **{claim: formatted}))
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert body["details"]["claim"].startswith(claim)
    assert "not one of the hosts recorded for this registration" in body["message"]
    assert world.count(Person) == 0 and world.count(Context) == 0  # nothing stored
    world.assert_untouched()


def test_a_launch_with_claims_on_the_victims_host_is_accepted(world):
    """The control: the same launch with the LMS's own service URLs goes through."""
    reply = _launch(world, _claims(world, **{AGS: {
        "scope": AGS_SCOPES, "lineitems": world.victim.url + "/lineitems"}}))
    assert reply.status_code == 303, reply.text
    assert world.count(Context) == 1
    world.assert_untouched()


# --- the sync's later calls (Link next, line-item ids, redirects, size, error bodies) ------------


def _sync(world: World) -> str:
    with world.runtime.sessions() as db:
        context = Context(platform_id=world.victim_platform_id, context_id="course-9",
                          ags_lineitems_url=world.victim.url + "/lineitems",
                          ags_scopes=list(AGS_SCOPES))
        db.add(context)
        db.commit()
        context_id = context.id
    settings = dataclasses.replace(world.runtime.settings, extra={
        **world.runtime.settings.extra, "sync_retry_attempts": 1, "sync_retry_budget": 0})
    result = sync_context(Runtime(settings=settings, engine=world.runtime.engine,
                                  sessions=world.runtime.sessions), context_id)
    # A source that cannot be read is skipped with a warning (its stored marks kept); the
    # refusal is what the run records and shows, so that is what is returned.
    assert result.status == "succeeded", result
    assert len(result.warnings) == 1, result
    with world.runtime.sessions() as db:
        run = db.scalar(select(SyncRun).where(SyncRun.context_id == context_id))
        assert run is not None and run.status == "succeeded" and not run.error
        assert "ags" not in (run.sources or [])  # the refused source was not read
        assert list(run.warnings) == list(result.warnings)
        return "\n".join(run.warnings)


@pytest.mark.parametrize(("mode", "words"), [
    ("next", "is not one of the hosts recorded for this platform registration"),
    ("foreign-id", "is not one of the hosts recorded for this platform registration"),
    ("redirect", "a redirect to another host"),
])
def test_sync_never_follows_the_lms_to_another_host(world, mode, words, caplog):
    world.hostile["lineitems"] = mode
    error = _sync(world)
    assert words in error
    assert "refused" in caplog.text  # and it is logged
    assert world.internal.hits == []
    assert [hit for hit in world.victim.hits if hit[1] == "/lineitems"]  # it did ask the LMS


def test_a_huge_reply_is_cut_while_it_streams(world):
    world.hostile["lineitems"] = "huge"
    small = dataclasses.replace(world.runtime.settings, outbound_max_bytes=1024 * 1024)
    world.runtime = Runtime(settings=small, engine=world.runtime.engine,
                            sessions=world.runtime.sessions)
    assert "larger than 1048576 bytes" in _sync(world)
    assert world.internal.hits == []


def test_an_lms_error_body_is_logged_never_shown(world, caplog):
    world.hostile["lineitems"] = "error"
    error = _sync(world)
    assert SECRET not in error and "HTTP 500" in error
    assert SECRET in caplog.text
    assert world.internal.hits == []


# --- the confused deputy -------------------------------------------------------------------------


def test_a_stranger_cannot_register_the_victims_client_id_and_token_endpoint(world):
    """Copied from any /lti/login URL: the pair belongs to the victim's registration."""
    with world.runtime.sessions() as db:
        with pytest.raises(Exception) as err:
            register_platform(db, PlatformSpec(
                issuer=world.stranger.url, client_id="victim-client",
                auth_login_url=world.stranger.url + "/auth",
                auth_token_url=world.victim.url + "/token/",  # spelled a little differently
                key_set_url=world.stranger.url + "/jwks"))
        db.rollback()
    assert getattr(err.value, "status", None) == 409
    assert "belongs to one registration" in err.value.message
    assert world.count(Platform) == 1
    world.assert_untouched()


def _stranger_dr(world: World, *, token_endpoint: str, client_id: str) -> None:
    def configuration() -> Response:
        return jsonify({
            "issuer": world.stranger.url, "authorization_endpoint": world.stranger.url + "/auth",
            "token_endpoint": token_endpoint, "jwks_uri": world.stranger.url + "/jwks",
            "registration_endpoint": world.stranger.url + "/register",
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "moodle",
                "messages_supported": [{"type": "LtiResourceLinkRequest"}]}})

    world.stranger.route("/config", configuration)
    world.stranger.route("/register", lambda: jsonify({"client_id": client_id}), ("POST",))


def test_dynamic_registration_from_a_host_the_allow_list_does_not_name_is_refused(world):
    _stranger_dr(world, token_endpoint=world.victim.url + "/token", client_id="victim-client")
    reply = requests.get(world.tool.url + "/lti/register", headers={"Accept": "application/json"},
                         params={"openid_configuration": world.stranger.url + "/config"})
    assert reply.status_code == 400
    assert "loopback address" in reply.json()["message"]
    assert world.stranger.hits == [] and world.count(Platform) == 1
    world.assert_untouched()


def test_dynamic_registration_claiming_the_victims_pair_is_refused(world, runtime):
    """Even where the stranger's host is allowed, its copy of the pair is a 409."""
    _stranger_dr(world, token_endpoint=world.victim.url + "/token", client_id="victim-client")
    both = dataclasses.replace(world.runtime.settings, outbound_allow=(
        f"127.0.0.1:{world.victim.port},127.0.0.2:{world.stranger.port}"))
    app = create_app(runtime=Runtime(settings=both, engine=runtime.engine,
                                     sessions=runtime.sessions))
    reply = app.test_client().get("/lti/register", headers={"Accept": "application/json"},
                                  query_string={"openid_configuration":
                                                world.stranger.url + "/config"})
    assert reply.status_code == 409, reply.get_data(as_text=True)
    assert world.count(Platform) == 1
    world.assert_untouched()


# --- SSRF through Dynamic Registration and address spellings -------------------------------------


@pytest.mark.parametrize("spelling", [
    "127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "[::ffff:127.0.0.1]",
    "localhost", "0.0.0.0",
])
def test_dynamic_registration_cannot_reach_the_internal_server_by_any_spelling(world, spelling):
    # HTTPS, so that only the address guard stands in the way (plain HTTP to anything but a
    # literal loopback name is refused earlier, by the URL rule).
    url = f"https://{spelling}:{world.internal.port}/.well-known/openid-configuration"
    reply = requests.get(world.tool.url + "/lti/register", headers={"Accept": "application/json"},
                         params={"openid_configuration": url})
    assert reply.status_code == 400, reply.text
    assert "resolves to" in reply.json()["message"]
    assert SECRET not in reply.text
    world.assert_untouched()


def test_a_key_set_on_the_internal_server_is_never_fetched(world):
    with world.runtime.sessions() as db:
        platform = db.get(Platform, world.victim_platform_id)
        platform.key_set, platform.key_set_url = None, f"http://127.1:{world.internal.port}/jwks"
        db.commit()
    reply = _launch(world, _claims(world))
    assert reply.status_code == 502
    assert "loopback address" in reply.json()["message"]
    world.assert_untouched()


# --- the open redirect at /lti/login -------------------------------------------------------


def test_login_never_redirects_to_a_host_outside_the_registrations_lms(world):
    with world.runtime.sessions() as db:
        register_platform(db, PlatformSpec(
            issuer="https://lms.stranger.example", client_id="s-1",
            auth_login_url="https://phishing.example/login",
            auth_token_url="https://lms.stranger.example/token",
            key_set_url="https://lms.stranger.example/jwks"))
        db.commit()
    reply = requests.get(world.tool.url + "/lti/login", allow_redirects=False, params={
        "iss": "https://lms.stranger.example", "client_id": "s-1", "login_hint": "x",
        "target_link_uri": PUBLIC_BASE + "/lti/launch"}, headers={"Accept": "application/json"})
    assert reply.status_code == 400
    assert "Location" not in reply.headers and "phishing.example/login?" not in reply.text


# --- Dynamic Registration cannot tie up workers ------------------------------------------------


def test_registration_is_refused_as_another_sites_subresource(world):
    reply = requests.get(world.tool.url + "/lti/register", params={
        "openid_configuration": world.victim.url + "/config"},
        headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors",
                 "Sec-Fetch-Dest": "image", "Accept": "application/json"})
    assert reply.status_code == 403
    assert world.victim.hits == []


def test_registration_works_within_one_total_deadline(world, runtime):
    """A platform that answers slowly is cut at LTI_TOOL_REGISTRATION_TIMEOUT_SECONDS in all."""

    def slow() -> Response:
        def drip() -> Iterator[bytes]:
            yield b"{"
            for _ in range(100):
                time.sleep(0.2)
                yield b" "
        return Response(drip(), mimetype="application/json")

    world.victim.route("/slow-config", slow)
    quick = dataclasses.replace(world.runtime.settings, registration_timeout_seconds=1)
    app = create_app(runtime=Runtime(settings=quick, engine=runtime.engine,
                                     sessions=runtime.sessions))
    reply = app.test_client().get("/lti/register", headers={"Accept": "application/json"},
                                  query_string={"openid_configuration":
                                                world.victim.url + "/slow-config"})
    assert reply.status_code == 400
    assert "did not arrive within 1 s (the time the tool gives a whole registration)" in \
        reply.get_json()["message"]
    assert world.count(Platform) == 1


@pytest.mark.parametrize(("path", "setting", "method"), [
    ("/lti/login", "rate_limit_login", "GET"),
    ("/lti/register", "rate_limit_register", "GET"),
    ("/verify", "rate_limit_verify", "POST"),
])
def test_unauthenticated_endpoints_are_rate_limited_per_address(runtime, path, setting, method):
    limited = dataclasses.replace(runtime.settings, **{setting: "3/minute"},
                                  dynamic_registration="off")
    tool = Server("limited")
    tool._server.app = create_app(runtime=Runtime(
        settings=limited, engine=runtime.engine, sessions=runtime.sessions))
    tool.start()
    try:
        statuses = [requests.request(method, tool.url + path, data=b"{}",
                                     headers={"Accept": "application/json"}).status_code
                    for _ in range(5)]
    finally:
        tool.stop()
    assert statuses[:3] == [statuses[0]] * 3 and statuses[0] != 429
    assert statuses[3:] == [429, 429]  # loopback is no exception


def test_the_counters_are_shared_through_the_database(runtime):
    """Two apps (two workers) on one database count together."""
    limited = dataclasses.replace(runtime.settings, rate_limit_login="3/minute")
    apps = [create_app(runtime=Runtime(settings=limited, engine=runtime.engine,
                                       sessions=runtime.sessions)).test_client()
            for _ in range(2)]
    statuses = [apps[n % 2].get("/lti/login", headers={"Accept": "application/json"}).status_code
                for n in range(4)]
    assert statuses[-1] == 429 and 429 not in statuses[:3]
