"""The platform key cache never turns launches into a flood against the platform's JWKS URL,
and a slow or unreachable key set gives a prompt 502 that names it."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lti_tool.launch.jwks_cache import JwksCache, PlatformKeysUnavailable, fetch_jwks
from testkit.lti import (
    JwksServer,
    SlowServer,
    fixture_claims,
    login_and_launch,
    platform_key,
    register_platform,
    session_rows,
)
from tests.loopback import loopback_client, loopback_jwks_fetch

URL = "https://lms.example.edu/jwks"
KEY = platform_key("platform")


class Platform:
    """A fetcher standing in for the platform's JWKS URL: counts fetches, can fail or stall."""

    def __init__(self, jwks: dict, delay: float = 0.0) -> None:
        self.jwks = jwks
        self.delay = delay
        self.down = False
        self.fetches = 0
        self._lock = threading.Lock()

    def __call__(self, url: str) -> dict:
        with self._lock:
            self.fetches += 1
        time.sleep(self.delay)
        if self.down:
            raise PlatformKeysUnavailable(f"The platform key set at {url} could not be fetched "
                                          "(ConnectionError).")
        return self.jwks


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_unknown_kids_refetch_at_most_once_per_cooldown_and_once_per_kid(clock):
    lms = Platform(KEY.jwks)
    cache = JwksCache(fetch=lms, cooldown=10, clock=clock)
    assert cache.key(URL, KEY.kid)["kid"] == KEY.kid
    for n in range(50):  # a flood of forged kids inside the cooldown: no fetch at all
        assert cache.key(URL, f"forged-{n}") is None
    assert lms.fetches == 1
    clock.now += 11
    assert cache.key(URL, "forged-a") is None  # the cooldown passed: one refetch
    assert lms.fetches == 2
    clock.now += 60
    assert cache.key(URL, "forged-a") is None  # the same kid again: refetched for already
    assert lms.fetches == 2
    assert cache.key(URL, "forged-b") is None  # another kid: one refetch...
    assert cache.key(URL, "forged-c") is None  # ...and then the cooldown again
    assert lms.fetches == 3
    assert cache.key(URL, KEY.kid) is not None  # known keys never cause a fetch
    assert lms.fetches == 3
    clock.now += 300  # a kid that missed may try again after kid_retry (a late-published key)
    late = platform_key("published-late")
    lms.jwks = {"keys": [KEY.public_jwk, {**late.public_jwk, "kid": "forged-a"}]}
    assert cache.key(URL, "forged-a") is not None
    assert lms.fetches == 4


def test_a_rotated_key_is_found_by_the_refetch_made_for_it(clock):
    lms = Platform(KEY.jwks)
    cache = JwksCache(fetch=lms, cooldown=10, clock=clock)
    cache.key(URL, KEY.kid)
    new = platform_key("rotated")
    lms.jwks = {"keys": [KEY.public_jwk, new.public_jwk]}
    clock.now += 11
    assert cache.key(URL, new.kid)["kid"] == new.kid
    assert lms.fetches == 2


def test_concurrent_misses_share_one_fetch():
    lms = Platform(KEY.jwks, delay=0.2)
    cache = JwksCache(fetch=lms, cooldown=0)
    cache.key(URL, KEY.kid)
    barrier = threading.Barrier(20)
    found: list[object] = []

    def launch(n: int) -> None:
        barrier.wait()
        found.append(cache.key(URL, f"forged-{n}"))

    threads = [threading.Thread(target=launch, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [None] * 20
    assert lms.fetches == 2  # the first fetch and ONE refetch for twenty forged kids


def test_a_failed_fetch_is_remembered_for_the_cooldown(clock):
    lms = Platform(KEY.jwks)
    lms.down = True
    cache = JwksCache(fetch=lms, cooldown=10, clock=clock)
    for _ in range(5):
        with pytest.raises(PlatformKeysUnavailable) as err:
            cache.key(URL, KEY.kid)
    assert lms.fetches == 1
    assert URL in err.value.message and "tries again in 10 s" in err.value.message
    assert err.value.status == 502
    lms.down = False
    clock.now += 10
    assert cache.key(URL, KEY.kid) is not None
    assert lms.fetches == 2


def test_a_failed_refetch_keeps_the_known_keys(clock):
    lms = Platform(KEY.jwks)
    cache = JwksCache(fetch=lms, cooldown=10, clock=clock)
    cache.key(URL, KEY.kid)
    lms.down = True
    clock.now += 11
    with pytest.raises(PlatformKeysUnavailable):
        cache.key(URL, "forged")
    assert cache.key(URL, KEY.kid) is not None  # launches signed with the known key go on
    assert cache.key(URL, "forged-2") is None  # and the failure started a new cooldown
    assert lms.fetches == 2


def test_the_key_set_expires_after_its_ttl(clock):
    lms = Platform(KEY.jwks)
    cache = JwksCache(fetch=lms, ttl=3600, clock=clock)
    cache.key(URL, KEY.kid)
    clock.now += 3601
    cache.key(URL, KEY.kid)
    assert lms.fetches == 2


def test_a_platform_that_never_answers_times_out():
    with SlowServer(drip=False) as server, pytest.raises(PlatformKeysUnavailable) as err:
        fetch_jwks(server.url, outbound=loopback_client(), read_timeout=0.3)
    assert err.value.message == (f"The platform key set at {server.url} did not answer within "
                                 "0.3 s (timeout).")


def test_a_platform_that_drips_bytes_is_cut_at_the_deadline():
    with SlowServer(drip=True) as server, pytest.raises(PlatformKeysUnavailable) as err:
        fetch_jwks(server.url, outbound=loopback_client(), read_timeout=0.3, deadline=0.4)
    assert err.value.message == (f"The platform key set at {server.url} did not arrive within "
                                 "0.4 s.")


@pytest.mark.parametrize(("then", "fragment"), [
    ("stall", "did not answer within 0.3 s (timeout)"),
    ("reset", "could not be fetched"),
])
def test_a_body_cut_short_is_a_clear_error(then, fragment):
    with SlowServer(drip=True, then=then) as server, \
            pytest.raises(PlatformKeysUnavailable) as err:
        fetch_jwks(server.url, outbound=loopback_client(), read_timeout=0.3, deadline=5)
    assert err.value.message.startswith(f"The platform key set at {server.url} ")
    assert fragment in err.value.message


def test_launch_against_a_stalled_key_set_is_a_prompt_502(app, client, db):
    fetch = loopback_jwks_fetch(read_timeout=0.3)
    app.extensions["lti_jwks_cache"] = JwksCache(fetch=fetch)
    with SlowServer(drip=False) as server:
        platform = register_platform(db, issuer="https://slow.example", client_id="c-slow",
                                     key_set_url=server.url)
        claims = fixture_claims("moodle/id_token_student_resource_link.json", platform)
        first = login_and_launch(client, platform, KEY, claims,
                                 launch_headers={"Accept": "application/json"})
        again = login_and_launch(client, platform, KEY, claims,
                                 launch_headers={"Accept": "application/json"})
    assert first.status_code == again.status_code == 502
    assert "did not answer within 0.3 s" in first.json["message"]
    assert "tries again in" in again.json["message"]  # remembered: no second wait
    assert set(session_rows(db).values()) == {0}


class Redirector:
    """A loopback server answering every GET with a 302 to `location(path)`."""

    def __init__(self, location: str) -> None:
        owner = self
        self.location = location

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(302)
                self.send_header("Location", owner.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/jwks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Redirector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_a_redirect_to_another_host_is_refused_and_never_reached():
    with JwksServer(KEY.jwks) as target, Redirector(target.url) as moved, pytest.raises(
            PlatformKeysUnavailable) as err:
        fetch_jwks(moved.url, outbound=loopback_client())
    assert "redirect to another host" in err.value.message
    assert target.hits == 0


@pytest.mark.parametrize(("location", "fragment"), [
    ("http://metadata.example.internal/latest", "a redirect to another host"),
    ("file:///etc/passwd", "a redirect to a URL that is not http(s)"),
    ("gopher://127.0.0.1:25/x", "a redirect to a URL that is not http(s)"),
    ("/elsewhere", "a redirect to plain HTTP"),  # same host, but key sets never go to HTTP
])
def test_a_redirect_off_the_host_or_off_https_is_refused(location, fragment):
    with Redirector(location) as moved, pytest.raises(PlatformKeysUnavailable) as err:
        fetch_jwks(moved.url, outbound=loopback_client())
    assert err.value.message.startswith(f"The tool did not fetch the platform key set at "
                                        f"{moved.url}")
    assert fragment in err.value.message


def test_a_loopback_key_set_is_refused_unless_allowed():
    with JwksServer(KEY.jwks) as server, pytest.raises(PlatformKeysUnavailable) as err:
        fetch_jwks(server.url)
    assert "loopback address" in err.value.message and "LTI_TOOL_OUTBOUND_ALLOW" in \
        err.value.message
    assert server.hits == 0
