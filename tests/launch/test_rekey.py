"""A platform that re-keys under the same kid (a practice platform restarting): the tool
refetches its key set once, single-flight and at most once a minute, then decides.

The platform publishes its JWKS from a real loopback HTTP server; launches are signed for real.
"""

from __future__ import annotations

import threading
import time

from lti_tool.launch.jwks_cache import JwksCache, PlatformKeysUnavailable
from testkit.lti import (
    JwksServer,
    PlatformKey,
    _rsa,
    fixture_claims,
    login_and_launch,
    register_platform,
    session_rows,
)
from tests.loopback import loopback_jwks_fetch

KID = "restarting-kid"
OLD = PlatformKey(key=_rsa("rekey-old", 2048), kid=KID)
NEW = PlatformKey(key=_rsa("rekey-new", 2048), kid=KID)
FORGER = PlatformKey(key=_rsa("rekey-forger", 2048), kid=KID)
JSON = {"Accept": "application/json"}


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def _launch(client, platform, key):
    claims = fixture_claims("moodle/id_token_student_resource_link.json", platform)
    return login_and_launch(client, platform, key, claims, launch_headers=JSON)


def test_a_platform_that_re_keys_under_the_same_kid_is_refetched_once(app, client, db):
    clock = Clock()
    app.extensions["lti_jwks_cache"] = JwksCache(fetch=loopback_jwks_fetch(), clock=clock)
    with JwksServer(OLD.jwks) as server:
        platform = register_platform(db, issuer="https://restarting.example", client_id="c-rk",
                                     key_set_url=server.url)
        assert _launch(client, platform, OLD).status_code == 303
        assert server.hits == 1
        server.jwks = NEW.jwks  # the platform restarts with a new key, same kid
        clock.now += 30  # the cached set is younger than a minute: the failure stands
        young = _launch(client, platform, NEW)
        assert young.status_code == 400 and "does not verify" in young.json["message"]
        assert server.hits == 1
        clock.now += 31  # older than a minute now: one refetch, then the launch succeeds
        assert _launch(client, platform, NEW).status_code == 303
        assert server.hits == 2
        # a forged signature right after: the set is fresh, no refetch, refused
        clock.now += 5
        forged = _launch(client, platform, FORGER)
        assert forged.status_code == 400 and server.hits == 2
        # even much later a forger costs one fetch a minute at most, and is still refused
        clock.now += 120
        for _ in range(5):
            assert _launch(client, platform, FORGER).status_code == 400
        assert server.hits == 3
    assert session_rows(db)["WebSession"] == 2


def test_concurrent_failures_share_one_refetch():
    clock = Clock()
    fetches = []
    release = threading.Event()

    def fetch(url: str) -> dict:
        fetches.append(url)
        if len(fetches) > 1:
            release.wait(5)
        return NEW.jwks if len(fetches) > 1 else OLD.jwks

    cache = JwksCache(fetch=fetch, clock=clock)
    assert cache.key("https://p.example/jwks", KID) == OLD.public_jwk
    clock.now += 61
    found = []
    threads = [threading.Thread(target=lambda: found.append(
        cache.refresh_after_failure("https://p.example/jwks", KID))) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(fetches) == 2  # the first load and ONE refetch for eight failures
    assert found == [NEW.public_jwk] * 8


def test_a_failed_refetch_keeps_the_keys_and_the_refusal():
    clock = Clock()
    state = {"down": False}

    def fetch(url: str) -> dict:
        if state["down"]:
            raise PlatformKeysUnavailable("down")
        return OLD.jwks

    cache = JwksCache(fetch=fetch, clock=clock)
    cache.key("https://p.example/jwks", KID)
    clock.now += 61
    state["down"] = True
    assert cache.refresh_after_failure("https://p.example/jwks", KID) is None
    assert cache.key("https://p.example/jwks", KID) == OLD.public_jwk
    assert cache.refresh_after_failure("https://p.example/jwks", KID) is None  # cooldown


def test_a_static_key_set_is_never_refetched(app, client, db):
    platform = register_platform(db, issuer="https://static.example", client_id="c-st", key=OLD)
    assert _launch(client, platform, NEW).status_code == 400
