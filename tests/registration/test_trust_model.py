"""The "anyone can mint university-signed credentials" attack, reproduced and refused.

A stranger registers a platform of their own and launches as Administrator. Under `open` the
registration is pending: its login and launch get a "waiting for approval" page (403) and the
tool stores nothing for them. Under `invite` it cannot register at all. Once an operator
approves it into institution B, its credentials verify as B's, never as institution A's, and
nothing B signs can be passed off as A's.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from registration_fakes import FakePlatform
from sqlalchemy import func, select

from lti_tool.badges import issuance
from lti_tool.badges.signing import Signer, issuer_id
from lti_tool.badges.verify import Verifier
from lti_tool.cli import main
from lti_tool.runtime import Runtime
from lti_tool.store.institutions import find_institution
from lti_tool.store.models.core import Platform
from lti_tool.web import create_app
from testkit.lti import (
    basic_claims,
    launch,
    login,
    platform_key,
    register_platform,
    row_counts,
    sign,
)
from tests.badges.conftest import World
from tests.conftest import base_institution

ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
PASSED_AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _client(runtime: Runtime, **changes):
    settings = dataclasses.replace(runtime.settings, **changes)
    return create_app(runtime=Runtime(settings=settings, engine=runtime.engine,
                                      sessions=runtime.sessions)).test_client()


def _cli(runtime: Runtime, *args: str):
    return CliRunner().invoke(main, list(args), obj={"runtime": runtime})


def _admin_claims(platform: Platform) -> dict:
    claims = basic_claims(platform, role="Administrator", sub="stranger")
    claims["https://purl.imsglobal.org/spec/lti/claim/roles"] = [ADMIN]
    return claims


@pytest.fixture
def stranger(serve) -> FakePlatform:
    fake = FakePlatform(client_id="stranger-client")
    fake.origin = serve(fake.app()).url
    return fake


def _register(client, fake: FakePlatform):
    return client.get("/lti/register", query_string={
        "openid_configuration": fake.configuration_url,
        "registration_token": fake.registration_token})


def test_under_invite_a_stranger_cannot_register(runtime, db, stranger) -> None:
    reply = _register(_client(runtime, dynamic_registration="invite"), stranger)
    assert reply.status_code == 403
    assert db.scalar(select(func.count()).select_from(Platform)) == 0


def test_under_open_a_stranger_is_pending_and_gets_nothing(runtime, db, stranger) -> None:
    client = _client(runtime, dynamic_registration="open")
    reply = _register(client, stranger)
    assert reply.status_code == 200, reply.text
    assert "waiting for approval" in reply.text
    registered = db.scalar(select(Platform))
    assert registered.status == "pending"
    assert find_institution(db, registered.institution.slug) is None  # no real institution
    before = row_counts(db)
    started = client.get("/lti/login", query_string={
        "iss": registered.issuer, "client_id": registered.client_id,
        "login_hint": "x", "target_link_uri": "http://127.0.0.1:8000/lti/launch"})
    assert started.status_code == 403
    assert "Waiting for approval" in started.text
    assert "Location" not in started.headers  # no redirect to the registrant's URL
    assert row_counts(db) == before


def test_a_pending_registration_launching_as_administrator_stores_nothing(runtime, db,
                                                                          client) -> None:
    key = platform_key("stranger")
    platform = register_platform(db, issuer="https://stranger.example", client_id="s", key=key)
    platform.status = "pending"
    db.commit()
    before = row_counts(db)
    reply = launch(client, sign({**_admin_claims(platform), "nonce": "n"}, key), "forged-state")
    assert reply.status_code == 403
    assert "Waiting for approval" in reply.get_data(as_text=True)
    assert row_counts(db) == before


def test_turkish_waiting_page(runtime, db, client) -> None:
    key = platform_key("stranger")
    platform = register_platform(db, issuer="https://stranger.example", client_id="s", key=key)
    platform.status = "pending"
    db.commit()
    reply = client.get("/lti/login", headers={"Accept-Language": "tr"}, query_string={
        "iss": platform.issuer, "client_id": platform.client_id, "login_hint": "x",
        "target_link_uri": "http://127.0.0.1:8000/lti/launch"})
    assert reply.status_code == 403
    assert "Onay bekleniyor" in reply.get_data(as_text=True)


def test_approved_into_b_its_credentials_verify_as_b_never_as_a(runtime, db, client) -> None:
    settings = runtime.settings
    institution_a = base_institution(db)
    victim = register_platform(db, issuer="https://moodle.university-a.example", client_id="v",
                               key=platform_key("victim"))
    assert victim.institution_id == institution_a.id
    key = platform_key("stranger")
    stranger = register_platform(db, issuer="https://stranger.example", client_id="s", key=key)
    # the stranger's registration is pending (open registration) until an operator acts
    from lti_tool.store.institutions import pending_institution

    stranger.status, stranger.institution_id = "pending", pending_institution(db).id
    db.commit()
    assert _cli(runtime, "institution", "add", "--slug", "b-college", "--name", "B College",
                "--country", "DE").exit_code == 0
    approved = _cli(runtime, "platform", "approve", str(stranger.id), "--institution",
                    "b-college")
    assert approved.exit_code == 0, approved.output
    db.expire_all()
    institution_b = find_institution(db, "b-college")
    assert db.get(Platform, stranger.id).institution_id == institution_b.id

    # the approved stranger launches as Administrator: an Office of B, nothing more
    started = login(client, stranger)
    reply = launch(client, sign({**_admin_claims(stranger), "nonce": started.nonce}, key),
                   started.state)
    assert reply.status_code in (302, 303), reply.get_data(as_text=True)

    world = World(db=db, settings=settings, platform=db.get(Platform, stranger.id))
    version = world.micro_credential("FAKE-101")
    person = world.person(sub="invented-learner")
    credential = issuance.issue_on_pass(
        db, settings, person_id=person.id, mc_version_id=version.id, offering_id=None,
        outcome_levels={"LO1": "exemplary", "LO2": "proficient"}, passed_at=PASSED_AT)
    db.commit()
    document = json.loads(credential.document)
    assert document["issuer"]["id"] == issuer_id(settings, institution_b)
    assert document["issuer"]["name"] == "B College"

    verifier = Verifier(db, settings)
    report = verifier.verify(document, None, "json")
    assert report.valid, report.to_dict()
    assert report.to_dict()["credential"]["issuer"] == "B College"
    assert verifier.verify_bytes(credential.jwt.encode()).valid

    # renamed to A's issuer, B's signature no longer holds and B's keys are not A's
    as_a = copy.deepcopy(document)
    as_a["issuer"]["id"] = issuer_id(settings, institution_a)
    as_a["issuer"]["name"] = institution_a.name
    renamed = verifier.verify(as_a, None, "json")
    assert not renamed.valid
    failed = {c.name for c in renamed.checks if c.passed is False}
    assert {"proof", "issuer"} <= failed

    # even freshly signed by B's own keys, a document naming A is refused
    unsigned = {k: v for k, v in as_a.items() if k != "proof"}
    signer = Signer.load(db, settings, institution_b)
    forged = signer.data_integrity(unsigned)
    forged_report = verifier.verify(forged, None, "json")
    assert not forged_report.valid
    assert {"proof", "issuer"} <= {c.name for c in forged_report.checks if c.passed is False}
    forged_jwt = signer.jwt(forged)
    assert not verifier.verify_bytes(forged_jwt.encode()).valid


def test_the_credential_cannot_go_to_a_learner_of_another_institution(runtime, db) -> None:
    a_platform = register_platform(db, issuer="https://a.example", client_id="a",
                                   key=platform_key("a"))
    b_platform = register_platform(db, issuer="https://b.example", client_id="b",
                                   key=platform_key("b"))
    assert a_platform.institution_id != b_platform.institution_id
    version = World(db=db, settings=runtime.settings, platform=a_platform).micro_credential()
    b_learner = World(db=db, settings=runtime.settings, platform=b_platform).person()
    from lti_tool.errors import Forbidden

    with pytest.raises(Forbidden):
        issuance.issue_on_pass(db, runtime.settings, person_id=b_learner.id,
                               mc_version_id=version.id, offering_id=None,
                               outcome_levels={}, passed_at=PASSED_AT)
