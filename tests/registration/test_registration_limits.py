"""Dynamic Registration reads the platform's answers within bounds: with the open policy anyone
can point the tool at a server that answers without end, forever, or with a broken body."""

from __future__ import annotations

import pytest
from flask import Flask
from registration_fakes import FakePlatform
from sqlalchemy import func, select
from test_dynamic_registration import _client_with

from lti_tool.store.models.core import Platform
from testkit.lti import SlowServer

JSON = {"Accept": "application/json"}


def _register(client, url: str, token: str = "reg-token-123"):
    return client.get("/lti/register", headers=JSON,
                      query_string={"openid_configuration": url, "registration_token": token})


def _no_platform(db) -> bool:
    return db.scalar(select(func.count()).select_from(Platform)) == 0


def test_an_endless_configuration_is_cut_at_the_size_limit(client, db, serve):
    app = Flask("huge")
    app.add_url_rule("/config", view_func=lambda: app.response_class(
        (b"{\"pad\": \"" + b"x" * 65536 for _ in range(64)), mimetype="application/json"))
    reply = _register(client, serve(app).url + "/config")
    assert reply.status_code == 400
    assert reply.get_json()["message"] == ("The platform's OpenID configuration is larger than "
                                           "262144 bytes.")
    assert _no_platform(db)


@pytest.mark.parametrize(("drip", "then", "fragment"), [
    (True, "drip", "did not arrive within 1 s"),
    (True, "reset", "Could not reach the platform for its OpenID configuration"),
    (False, "drip", "did not arrive within 1 s"),
])
def test_a_configuration_that_drips_stalls_or_breaks_is_a_clear_400(runtime, db, drip, then,
                                                                   fragment):
    # LTI_TOOL_REGISTRATION_TIMEOUT_SECONDS bounds the whole registration, not each read.
    client = _client_with(runtime, registration_timeout_seconds=1)
    with SlowServer(drip=drip, then=then) as server:
        reply = _register(client, server.url)
    assert reply.status_code == 400, reply.text
    assert fragment in reply.get_json()["message"]
    assert _no_platform(db)


def test_a_huge_refusal_names_its_status_only(client, db, serve):
    fake = FakePlatform(reply_status=400, reply_body="no " * 200_000)
    fake.origin = serve(fake.app()).url
    reply = _register(client, fake.configuration_url)
    assert reply.status_code == 400
    assert reply.get_json()["message"].startswith(
        "The platform refused the registration (HTTP 400).")
    assert "no no" not in reply.get_json()["message"]  # logged, never shown
    assert _no_platform(db)
