"""Reusable pieces for launching the tool in tests and benchmarks.

- `PlatformKey`: an RS256 keypair playing the LMS, with its JWKS; `sign` / `forge` make tokens.
- `register_platform`: a Platform + Deployment row, with a static key set or a JWKS URL.
- `JwksServer`: a real HTTP server on loopback serving a platform JWKS (mutable, for rotation).
- `SlowServer`: a loopback server that stalls, drips or cuts its answer (timeouts, deadlines).
- `fixture_claims`: the captured Moodle / synthetic Canvas claims re-aimed at a registration.
- `login` / `launch` / `login_and_launch`: the OIDC round trip through a Flask test client.
- `Lti1p3Platform`: the independent `lti1p3platform` package acting as the LMS.
"""

from __future__ import annotations

import base64
import copy
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from jwcrypto import jwk, jws
from sqlalchemy import func, select

from lti_tool.store.models.core import (
    Context,
    Deployment,
    Membership,
    Person,
    Platform,
    ResourceLink,
    UsedNonce,
    WebSession,
)
from testkit.fakelms.data import load_fixture
from testkit.institutions import institution_for_new_platform

TOOL = "http://127.0.0.1:8000"
LAUNCH_URL = TOOL + "/lti/launch"
LTI = "https://purl.imsglobal.org/spec/lti/claim/"


# --- keys and tokens ---------------------------------------------------------------------------

@dataclass
class PlatformKey:
    """A platform's RSA signing key and its public JWK (kid, alg, use)."""

    key: jwk.JWK
    kid: str
    alg: str = "RS256"

    @property
    def public_jwk(self) -> dict:
        public = self.key.export_public(as_dict=True)
        public.update(kid=self.kid, alg=self.alg, use="sig")
        return public

    @property
    def jwks(self) -> dict:
        return {"keys": [self.public_jwk]}

    @property
    def private_pem(self) -> str:
        return self.key.export_to_pem(private_key=True, password=None).decode()


@lru_cache(maxsize=8)
def _rsa(name: str, bits: int) -> jwk.JWK:
    return jwk.JWK.generate(kty="RSA", size=bits)


def platform_key(name: str = "platform", bits: int = 2048, alg: str = "RS256") -> PlatformKey:
    """A keypair, generated once per name and process (RSA generation is slow)."""
    return PlatformKey(key=_rsa(name, bits), kid=f"{name}-kid", alg=alg)


def sign(claims: dict, key: PlatformKey, *, alg: str | None = None,
         header: dict | None = None) -> str:
    """A compact JWS of `claims`, really signed with `key`."""
    protected = {"alg": alg or key.alg, "typ": "JWT", "kid": key.kid, **(header or {})}
    protected = {k: v for k, v in protected.items() if v is not None}
    token = jws.JWS(json.dumps(claims).encode())
    token.add_signature(key.key, alg=protected["alg"], protected=json.dumps(protected))
    return token.serialize(compact=True)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict, claims: dict, signature: bytes = b"") -> str:
    """A token with any header and signature bytes (alg none, HS256, garbage)."""
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()),
                     b64(signature)])


# --- registrations -----------------------------------------------------------------------------

# The host of the captured Moodle (../shared/fixtures/moodle): its claims' service URLs.
CAPTURED_MOODLE_HOST = "127.0.0.1:8100"


def register_platform(db, *, issuer: str, client_id: str, key: PlatformKey | None = None,
                      key_set_url: str | None = None, deployments: tuple[str, ...] = ("1",),
                      lms_kind: str = "other", auto_accept: bool = False,
                      auth_login_url: str | None = None, auth_token_url: str | None = None,
                      lms_hosts: tuple[str, ...] = (CAPTURED_MOODLE_HOST,)) -> Platform:
    """A committed registration with its deployments; static key set when `key` is given.

    `lms_hosts` are recorded as the operator's `--lms-host`: by default the captured Moodle's,
    where the AGS and NRPS claims of the `moodle/…` fixtures point, whatever the issuer."""
    platform = Platform(
        institution_id=institution_for_new_platform(db).id, status="active",
        issuer=issuer, client_id=client_id, name=f"{lms_kind} {client_id}", lms_kind=lms_kind,
        auth_login_url=auth_login_url or issuer.rstrip("/") + "/auth",
        auth_token_url=auth_token_url or issuer.rstrip("/") + "/token", key_set_url=key_set_url,
        key_set=key.jwks if key and not key_set_url else None,
        auto_accept_deployments=auto_accept, lms_hosts=list(lms_hosts))
    db.add(platform)
    db.flush()
    for deployment_id in deployments:
        db.add(Deployment(platform_id=platform.id, deployment_id=deployment_id))
    db.commit()
    return platform


class SlowServer:
    """A loopback TCP server that accepts and then stalls (`drip=False`), or sends the headers
    and then one byte of body every 50 ms (`drip=True`), or sends the headers and part of the
    body and then stalls (`then="stall"`) or resets the connection (`then="reset"`)."""

    def __init__(self, *, drip: bool, then: str = "drip") -> None:
        self.drip = drip
        self.then = then
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/jwks"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        connections = []
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            connections.append(conn)
            if self.drip:
                threading.Thread(target=self._drip, args=(conn,), daemon=True).start()
        for conn in connections:
            conn.close()

    def _drip(self, conn: socket.socket) -> None:
        try:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100000\r\n\r\n{")
            if self.then == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                return
            while not self._stop.is_set() and self.then == "stall":
                time.sleep(0.05)
            while not self._stop.is_set():
                conn.sendall(b" ")
                time.sleep(0.05)
        except OSError:
            pass

    def __enter__(self) -> SlowServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


class JwksServer:
    """A loopback HTTP server publishing `jwks` (replace it to simulate key rotation)."""

    def __init__(self, jwks: dict) -> None:
        self.jwks = jwks
        self.hits = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits += 1
                body = json.dumps(owner.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/jwks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- claims ------------------------------------------------------------------------------------

def fixture_claims(name: str, platform: Platform, *, deployment_id: str | None = None,
                   now: int | None = None) -> dict:
    """Claims of `moodle/…` or `canvas/…` fixture files aimed at `platform` and fresh in time.

    Everything else (roles, context, custom, AGS, NRPS, quirks) stays exactly as captured.
    """
    claims = copy.deepcopy(load_fixture(*name.split("/")))
    now = int(time.time()) if now is None else now
    claims.update(iss=platform.issuer, iat=now, exp=now + 60)
    if isinstance(claims.get("aud"), list):
        claims["aud"] = [platform.client_id, *claims["aud"][1:]]
    else:
        claims["aud"] = platform.client_id
    if "azp" in claims:
        claims["azp"] = platform.client_id
    if deployment_id is not None:
        claims[LTI + "deployment_id"] = deployment_id
    claims[LTI + "target_link_uri"] = LAUNCH_URL
    return claims


def basic_claims(platform: Platform, *, role: str = "Learner", sub: str = "user-1",
                 deployment_id: str = "1", context_id: str = "course-1",
                 message_type: str = "LtiResourceLinkRequest") -> dict:
    """A minimal valid resource-link launch (nonce filled in by `launch`)."""
    now = int(time.time())
    claims = {
        "iss": platform.issuer, "aud": platform.client_id, "sub": sub, "iat": now,
        "exp": now + 60, "name": f"{role} {sub}", "email": f"{sub}@example.edu",
        LTI + "message_type": message_type, LTI + "version": "1.3.0",
        LTI + "deployment_id": deployment_id, LTI + "target_link_uri": LAUNCH_URL,
        LTI + "roles": [f"http://purl.imsglobal.org/vocab/lis/v2/membership#{role}"],
        LTI + "context": {"id": context_id, "label": "C1", "title": "Course One"},
        LTI + "resource_link": {"id": "link-1", "title": "Micro-credential"},
    }
    if message_type == "LtiDeepLinkingRequest":
        claims.pop(LTI + "resource_link")
        claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = {
            "deep_link_return_url": "https://lms.example.edu/deep_link_return",
            "accept_types": ["ltiResourceLink"], "accept_presentation_document_targets":
            ["iframe", "window"], "accept_multiple": True, "data": "opaque-data-123"}
    return claims


# --- the OIDC round trip through a test client -------------------------------------------------

@dataclass
class Login:
    """What /lti/login answered: the auth request parameters and the state cookie."""

    response: Any
    params: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return self.params["state"]

    @property
    def nonce(self) -> str:
        return self.params["nonce"]


class _AuthUrlFinder(HTMLParser):
    """Pulls the platform auth URL out of the cookie-check / storage pages (their 'Continue')."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "a":
            self.links.extend(v for k, v in attrs if k == "href" and v)


def login(client, platform: Platform, *, method: str = "GET", headers: dict | None = None,
          **extra: str) -> Login:
    """Initiate login as the platform would; returns the parsed auth request."""
    params = {"iss": platform.issuer, "login_hint": "hint-1", "target_link_uri": LAUNCH_URL,
              "client_id": platform.client_id, "lti_deployment_id": "1", **extra}
    params = {k: v for k, v in params.items() if v is not None}
    if method == "POST":
        response = client.post("/lti/login", data=params, headers=headers or {})
    else:
        response = client.get("/lti/login", query_string=params, headers=headers or {})
    location = response.headers.get("Location")
    if location is None and response.status_code == 200:
        finder = _AuthUrlFinder()
        finder.feed(response.get_data(as_text=True))
        location = next((u for u in finder.links if u.startswith(platform.auth_login_url)), None)
    query = parse_qs(urlparse(location).query) if location else {}
    return Login(response=response, params={k: v[0] for k, v in query.items()})


def drop_session_cookies(client) -> None:
    """Forget the session cookies (and the loopback Lax twin), as a browser blocking them."""
    for name in ("lti_tool_session", "lti_tool_session_lax"):
        client.delete_cookie(name)


def drop_state_cookies(client, state: str) -> None:
    """Forget both state cookies of a login, as a browser that blocks the tool's cookies."""
    for prefix in ("lti_state_", "lti_state_lax_"):
        client.delete_cookie(prefix + state, path="/lti/")


def launch(client, id_token: str, state: str | None, **headers: str):
    """POST the id_token (and state) to /lti/launch as the platform's auto-submitted form."""
    data = {"id_token": id_token}
    if state is not None:
        data["state"] = state
    return client.post("/lti/launch", data=data, headers=headers)


def login_and_launch(client, platform: Platform, key: PlatformKey, claims: dict, *,
                     launch_headers: dict | None = None, **login_extra: str):
    """The full round trip: login, fill in the tool's nonce, sign, launch."""
    started = login(client, platform, **login_extra)
    assert started.response.status_code in (200, 302), started.response.get_data(as_text=True)
    claims = {**claims, "nonce": started.nonce}
    return launch(client, sign(claims, key), started.state, **(launch_headers or {}))


def row_counts(db) -> dict[str, int]:
    """Rows a launch may create; bad input must leave these unchanged."""
    db.expire_all()
    return {model.__name__: db.scalar(select(func.count()).select_from(model))
            for model in (Person, Context, ResourceLink, Membership, WebSession, UsedNonce,
                          Deployment)}


def session_rows(db) -> dict[str, int]:
    counts = row_counts(db)
    return {k: counts[k] for k in ("Person", "Context", "ResourceLink", "Membership",
                                   "WebSession", "UsedNonce")}


# --- lti1p3platform as the LMS -----------------------------------------------------------------

class Lti1p3Platform:
    """A real LTI 1.3 platform implementation (PyPI `lti1p3platform`) aimed at the tool.

    Its Flask-free core builds the OIDC login initiation and, from the tool's authentication
    request, a signed id_token; the HTML form it would render is replaced by `form_fields`
    (its template module needs pkg_resources), which a test posts the way a browser would.
    """

    def __init__(self, *, issuer: str, client_id: str, deployment_id: str,
                 key: PlatformKey, tool: str = TOOL) -> None:
        from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
        from lti1p3platform.registration import Registration

        self.registration = (
            Registration().set_iss(issuer).set_client_id(client_id)
            .set_deployment_id(deployment_id).set_oidc_login_url(tool + "/lti/login")
            .set_launch_url(tool + "/lti/launch").set_deeplink_launch_url(tool + "/lti/launch")
            .set_tool_key_set_url(tool + "/lti/jwks")
            .set_platform_private_key(key.private_pem)
            .set_platform_public_key(key.key.export_to_pem().decode()))
        registration = self.registration

        class Conf(LTI1P3PlatformConfAbstract):
            def init_platform_config(self, **kwargs: Any) -> None:
                pass

            def get_registration_by_params(self, **kwargs: Any) -> Registration:
                return registration

        self.conf = Conf()
        self.conf.get_registration()
        self.kid = registration.get_kid()

    @property
    def jwks(self) -> dict:
        return self.conf.get_jwks()

    def login_url(self, user_id: str, message_hint: str = "resource-link-1") -> str:
        """The login initiation URL the platform sends the browser to."""
        from lti1p3platform.oidc_login import OIDCLoginAbstract

        class Login(OIDCLoginAbstract):
            def set_lti_message_hint(self, **kwargs: Any) -> None:
                self._lti_message_hint = kwargs["hint"]

            def get_redirect(self, url: str) -> str:
                return url

        oidc = Login(None, self.conf)
        oidc.set_lti_message_hint(hint=message_hint)
        return oidc.initiate_login(user_id)

    def launch_form(self, auth_params: dict, *, user_id: str, roles: list[str],
                    context: tuple[str, str, str] = ("course-7", "LTI7", "Course Seven"),
                    resource_link: str | None = "rl-1", deep_link_return: str | None = None,
                    custom: dict | None = None, name: str | None = None,
                    email: str | None = None,
                    ags: tuple[str, str | None] = ("https://platform.example/ags/lineitems",
                                                   "https://platform.example/ags/lineitems/1"),
                    nrps: str = "https://platform.example/nrps/memberships",
                    extra_claims: dict | None = None) -> dict:
        """The platform's answer to the tool's auth request: launch URL, id_token, state.

        `extra_claims` are added last (e.g. an LMS's own claims, or its exact AGS claim)."""
        from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
        from lti1p3platform.request import Request

        class FormRequest(Request):
            def build_metadata(self, request: dict) -> dict:
                return {"method": "GET", "form_data": {}, "get_data": request, "headers": {},
                        "content_type": None, "path": "/auth", "json": None}

        class Launch(LTIAdvantageMessageLaunchAbstract):
            def render_launch_form(self, launch_data: dict, **kwargs: Any) -> dict:
                return launch_data

        message = Launch(FormRequest(auth_params), self.conf)
        message.set_user_data(user_id, roles, full_name=name or f"User {user_id}",
                              email_address=email or f"{user_id}@platform.example")
        message.set_launch_context_claim(context[0], context_title=context[2],
                                         context_label=context[1])
        if resource_link:
            message.set_resource_link_claim(resource_link, title="Badge activity")
        if custom:
            message.set_custom_parameters_claim(custom)
        message.set_ags(lineitems_url=ags[0], lineitem_url=ags[1])
        message.set_nrps(nrps)
        if extra_claims:
            message.set_extra_claims(extra_claims)
        if deep_link_return:
            message.set_dl(deep_link_return, title="Pick", extra_data={"token": "dl-data-1"})
        else:
            message.set_launch_url(self.registration.get_launch_url())
        return message.lti_launch()


def auto_submit_form(action: str, fields: dict[str, str]) -> str:
    """The auto-submitting HTML form a platform renders (what lti1p3platform's template does)."""
    from html import escape

    inputs = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                     for k, v in fields.items())
    return (f'<form id="f" method="post" action="{escape(action)}">{inputs}</form>'
            '<script>document.getElementById("f").submit()</script>')


class FormReader(HTMLParser):
    """Reads back a rendered auto-submitting form: its action and hidden fields."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.action = attributes.get("action") or ""
        if tag == "input" and attributes.get("name"):
            self.fields[attributes["name"]] = attributes.get("value") or ""


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def url_with(url: str, **params: str) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)
