"""Operator CLI for institutions and registration status, and 4xx for out-of-range ids."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from lti_tool.cli import main
from lti_tool.launch.platforms import prune_pending_registrations
from lti_tool.store import keys
from lti_tool.store.db import utcnow
from lti_tool.store.institutions import pending_institution
from lti_tool.store.models.core import Institution, Platform, RegistrationInvite
from tests.registration.test_cli import MOODLE


@pytest.fixture
def cli(runtime):
    def run(*args: str):
        return CliRunner().invoke(main, list(args), obj={"runtime": runtime})

    return run


def test_institution_add_and_list(cli, db) -> None:
    added = cli("institution", "add", "--slug", "ieu", "--name", "Izmir University",
                "--country", "tr", "--url", "https://www.ieu.edu.tr", "--email", "mc@ieu.edu.tr",
                "--legal-id", "TR-123", "--region", "Izmir")
    assert added.exit_code == 0, added.output
    rows = json.loads(cli("institution", "list", "--json").output)
    ieu = next(r for r in rows if r["slug"] == "ieu")
    assert (ieu["country"], ieu["legal_identifier"], ieu["region"]) == ("TR", "TR-123", "Izmir")
    assert ieu["issuer"] == "http://127.0.0.1:8000/issuers/ieu"
    assert "ieu" in cli("institution", "list").output


@pytest.mark.parametrize(("args", "needle"), [
    (["--slug", "Bad Slug", "--name", "X", "--country", "TR"], "slug"),
    (["--slug", "x", "--name", "X", "--country", "XX"], "ISO 3166-1"),
    (["--slug", "x", "--name", "X", "--country", "TR", "--email", "nope"], "e-mail"),
    (["--slug", "test-university", "--name", "X", "--country", "TR"], "already exists"),
])
def test_institution_add_refuses_bad_fields(cli, db, args, needle) -> None:
    before = db.scalar(select(func.count()).select_from(Institution))
    result = cli("institution", "add", *args)
    assert result.exit_code == 1 and needle in result.stderr
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Institution)) == before


def test_platform_add_needs_the_institution_when_there_are_several(cli, db) -> None:
    assert cli("institution", "add", "--slug", "b", "--name", "B", "--country", "DE"
               ).exit_code == 0
    refused = cli("platform", "add", *MOODLE)
    assert refused.exit_code == 1 and "--institution" in refused.stderr
    added = cli("platform", "add", *MOODLE, "--institution", "b")
    assert added.exit_code == 0, added.output
    (row,) = json.loads(cli("platform", "list", "--json").output)
    assert (row["status"], row["institution"]) == ("active", "b")


def test_an_issuer_held_by_another_institution_needs_the_operators_word(cli, db) -> None:
    assert cli("platform", "add", *MOODLE).exit_code == 0  # test-university holds the issuer
    assert cli("institution", "add", "--slug", "b", "--name", "B", "--country", "DE"
               ).exit_code == 0
    other = [*MOODLE]
    other[other.index("abc123")] = "other-client"
    refused = cli("platform", "add", *other, "--institution", "b")
    assert refused.exit_code == 1 and "already belongs to institution test-university" \
        in refused.stderr
    assert cli("platform", "add", *other, "--institution", "b", "--allow-shared-issuer"
               ).exit_code == 0


def test_canvas_cloud_is_shared_by_nature(cli, db) -> None:
    canvas = ["--issuer", "https://canvas.instructure.com", "--auth-login-url",
              "https://sso.canvaslms.com/api/lti/authorize_redirect", "--auth-token-url",
              "https://sso.canvaslms.com/login/oauth2/token", "--key-set-url",
              "https://sso.canvaslms.com/api/lti/security/jwks", "--lms-kind", "canvas"]
    assert cli("platform", "add", *canvas, "--client-id", "100").exit_code == 0
    assert cli("institution", "add", "--slug", "b", "--name", "B", "--country", "DE"
               ).exit_code == 0
    assert cli("platform", "add", *canvas, "--client-id", "200", "--institution", "b"
               ).exit_code == 0


def test_approve_disable_and_remove_semantics(cli, db) -> None:
    assert cli("platform", "add", *MOODLE).exit_code == 0
    platform = db.scalar(select(Platform))
    assert cli("platform", "approve", str(platform.id)).exit_code == 1  # already active
    assert cli("platform", "disable", str(platform.id)).exit_code == 0
    db.expire_all()
    assert db.get(Platform, platform.id).status == "disabled"
    assert cli("platform", "approve", str(platform.id)).exit_code == 0
    db.expire_all()
    assert db.get(Platform, platform.id).status == "active"
    from lti_tool.store.models.core import AuditEntry

    db.add(AuditEntry(institution_id=platform.institution_id, platform_id=platform.id,
                      actor_label="Office", action="credential.revoke", target="x"))
    db.commit()
    refused = cli("platform", "remove", str(platform.id), "--yes")
    assert refused.exit_code == 1 and "platform disable" in refused.stderr
    assert db.get(Platform, platform.id) is not None


def test_invites_are_bound_to_an_institution(cli, db) -> None:
    assert cli("institution", "add", "--slug", "b", "--name", "B", "--country", "DE"
               ).exit_code == 0
    assert cli("platform", "invite").exit_code == 1  # two institutions: name one
    made = cli("platform", "invite", "--institution", "b")
    assert made.exit_code == 0 and "/lti/register?invite=" in made.stdout
    invite = db.scalar(select(RegistrationInvite))
    assert invite.institution.slug == "b" if hasattr(invite, "institution") else True
    assert db.get(Institution, invite.institution_id).slug == "b"


def test_badge_keys_rotate_per_institution(cli, db, runtime) -> None:
    assert cli("institution", "add", "--slug", "b", "--name", "B", "--country", "DE"
               ).exit_code == 0
    b = db.scalar(select(Institution).where(Institution.slug == "b"))
    first = keys.active_key(db, runtime.settings, "badge-ed25519", institution_id=b.id).kid
    db.commit()
    result = cli("keys", "rotate", "--purpose", "badge-ed25519", "--institution", "b")
    assert result.exit_code == 0 and "stays published for ever" in result.output
    db.expire_all()
    published = [k["kid"] for k in keys.public_jwks(db, runtime.settings, "badge-ed25519",
                                                     institution_id=b.id)["keys"]]
    assert first in published and len(published) == 2
    other = keys.public_jwks(db, runtime.settings, "badge-ed25519",
                             institution_id=db.scalar(select(Institution.id)
                                                      .where(Institution.slug != "b")))
    assert first not in [k["kid"] for k in other["keys"]]


def test_stale_pending_registrations_and_expired_invites_are_pruned(db, runtime) -> None:
    from datetime import timedelta

    from lti_tool.launch.registration import create_invite

    old = Platform(institution_id=pending_institution(db).id, status="pending",
                   issuer="https://stranger.example", client_id="s", auth_login_url="a",
                   auth_token_url="b", created_at=utcnow() - timedelta(days=30))
    fresh = Platform(institution_id=pending_institution(db).id, status="pending",
                     issuer="https://stranger.example", client_id="t", auth_login_url="a",
                     auth_token_url="b")
    db.add_all([old, fresh])
    invite = create_invite(db, runtime.settings, days=1).row
    invite.expires_at = utcnow() - timedelta(hours=1)
    db.flush()
    assert prune_pending_registrations(db, older_than_days=14) == 1
    assert [p.client_id for p in db.scalars(select(Platform))] == ["t"]
    assert db.scalar(select(func.count()).select_from(RegistrationInvite)) == 0


PUBLIC_ID_ROUTES = ["/achievements/{}", "/achievements/{}/image.png", "/achievements/{}/image.svg",
                    "/credentials/{}", "/credentials/{}.json", "/credentials/{}.jwt",
                    "/credentials/{}.png", "/credentials/{}.svg", "/issuers/{}", "/status/{}",
                    "/keys/{}"]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(PUBLIC_ID_ROUTES),
       value=st.one_of(st.integers(min_value=-(2**80), max_value=2**80).map(str),
                       st.sampled_from(["99999999999999999999", "9" * 400, "0", "-1",
                                        "-pending", "%00", "..", "x" * 5000]),
                       st.text(alphabet=st.characters(blacklist_categories=["Cs"]),
                               min_size=1, max_size=80)))
def test_unauthenticated_routes_answer_4xx_for_any_id(client, route, value) -> None:
    from urllib.parse import quote

    reply = client.get(route.format(quote(value, safe="")))
    assert 400 <= reply.status_code < 500, (route, value, reply.status_code)
