"""pylti1p3 over the database: DbToolConf finds registrations by (issuer, client_id) only."""

from __future__ import annotations

import json

import pytest
from jwcrypto import jwk
from pylti1p3.exception import LtiException
from sqlalchemy import select

from lti_tool.launch.toolconf import ClaimsLaunch, DbToolConf
from lti_tool.store import keys as tool_keys
from lti_tool.store.models.core import Deployment, Person, WebSession
from testkit.lti import fixture_claims, login_and_launch, register_platform
from tests.launch.conftest import CANVAS_DEPLOYMENT, CANVAS_HOST, CANVAS_ISSUER

JSON = {"Accept": "application/json"}
OTHER_CLIENT = "170000000000999"


@pytest.fixture
def two_schools(db, canvas, key):
    """Two Canvas cloud registrations: one issuer, two client_ids, the same deployment id."""
    other = register_platform(db, issuer=CANVAS_ISSUER, client_id=OTHER_CLIENT, key=key,
                              deployments=(CANVAS_DEPLOYMENT,), lms_kind="canvas",
                              lms_hosts=(CANVAS_HOST,))
    return canvas, other


def test_registration_is_found_by_issuer_and_client_id(db, settings, two_schools):
    canvas, other = two_schools
    conf = DbToolConf(db, settings)
    first = conf.find_registration_by_params(CANVAS_ISSUER, canvas.client_id)
    second = conf.find_registration_by_params(CANVAS_ISSUER, OTHER_CLIENT)
    assert (first.platform.id, first.get_client_id()) == (canvas.id, canvas.client_id)
    assert (second.platform.id, second.get_client_id()) == (other.id, OTHER_CLIENT)
    assert first.get_issuer() == second.get_issuer() == CANVAS_ISSUER
    assert first.get_auth_login_url() == canvas.auth_login_url
    assert first.get_key_set() == canvas.key_set
    assert conf.find_registration_by_params(CANVAS_ISSUER, "170000000000000") is None
    assert conf.check_iss_has_many_clients(CANVAS_ISSUER)
    assert not conf.check_iss_has_one_client(CANVAS_ISSUER)
    with pytest.raises(LtiException, match="never by the issuer"):
        conf.find_registration_by_issuer(CANVAS_ISSUER)
    with pytest.raises(LtiException, match="never by the issuer"):
        conf.find_deployment(CANVAS_ISSUER, CANVAS_DEPLOYMENT)


def test_deployments_come_from_the_table(db, settings, two_schools):
    canvas, other = two_schools
    conf = DbToolConf(db, settings)
    found = conf.find_deployment_by_params(CANVAS_ISSUER, CANVAS_DEPLOYMENT, OTHER_CLIENT)
    assert found.get_deployment_id() == CANVAS_DEPLOYMENT
    assert conf.find_deployment_by_params(CANVAS_ISSUER, "43:new", OTHER_CLIENT) is None
    assert conf.find_deployment_by_params(CANVAS_ISSUER, CANVAS_DEPLOYMENT, "nobody") is None
    other.auto_accept_deployments = True  # a new course install is accepted (then recorded)
    row = db.scalar(select(Deployment).where(Deployment.platform_id == other.id))
    row.enabled = False  # ...but a disabled one stays refused
    db.flush()
    assert conf.find_deployment_by_params(CANVAS_ISSUER, "43:new", OTHER_CLIENT) is not None
    assert conf.find_deployment_by_params(CANVAS_ISSUER, CANVAS_DEPLOYMENT, OTHER_CLIENT) is None
    # The first school's registration is untouched by the second's settings.
    assert conf.find_deployment_by_params(CANVAS_ISSUER, "43:new", canvas.client_id) is None


def test_registration_signs_with_the_published_tool_key(client, db, settings, two_schools):
    canvas, _ = two_schools
    registration = DbToolConf(db, settings).registration_for(canvas)
    published = client.get("/lti/jwks").json["keys"]
    assert registration.get_kid() == published[0]["kid"]
    assert registration.get_jwks() == published
    # The private key pylti1p3 signs with is the one behind the published public key.
    private = jwk.JWK.from_pem(registration.get_tool_private_key().encode())
    assert json.loads(private.export_public())["n"] == published[0]["n"]
    tool_keys.rotate(db, settings, "lti")
    rotated = DbToolConf(db, settings).registration_for(canvas)
    assert rotated.get_kid() != registration.get_kid()
    assert [k["kid"] for k in rotated.get_jwks()] == [published[0]["kid"], rotated.get_kid()]


def test_pylti1p3_sees_the_registration_named_by_azp(db, settings, two_schools):
    """pylti1p3 alone takes the first audience; the tool gives it the client_id azp names."""
    canvas, other = two_schools
    claims = fixture_claims("canvas/id_token_student_resource_link.json", other)
    claims["aud"] = [canvas.client_id, OTHER_CLIENT]
    claims["azp"] = OTHER_CLIENT
    message = ClaimsLaunch(DbToolConf(db, settings), claims, OTHER_CLIENT)
    message.validate_registration().validate_deployment().validate_message()
    assert message.registration.platform.id == other.id


@pytest.mark.parametrize("aud_first", [True, False])
def test_launch_with_aud_list_and_azp_lands_in_the_azp_registration(client, db, two_schools,
                                                                    key, aud_first):
    canvas, other = two_schools
    claims = fixture_claims("canvas/id_token_instructor_resource_link.json", other)
    audiences = [OTHER_CLIENT, canvas.client_id]
    claims["aud"] = audiences if aud_first else audiences[::-1]
    claims["azp"] = OTHER_CLIENT
    response = login_and_launch(client, other, key, claims, launch_headers=JSON)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert db.scalar(select(Person.platform_id)) == other.id
    assert db.scalar(select(WebSession.platform_id)) == other.id


def test_disabled_deployment_is_refused_by_name(client, db, two_schools, key):
    _, other = two_schools
    row = db.scalar(select(Deployment).where(Deployment.platform_id == other.id))
    row.enabled = False
    db.commit()
    claims = fixture_claims("canvas/id_token_student_resource_link.json", other)
    response = login_and_launch(client, other, key, claims, launch_headers=JSON)
    assert response.status_code == 400
    assert response.json["message"] == (f"Deployment {CANVAS_DEPLOYMENT!r} has been disabled "
                                         "by the Office.")
    assert db.scalar(select(Person)) is None
