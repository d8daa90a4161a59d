"""Deep Linking 2.0: the chooser, placing through the catalogue, the signed response."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from jwcrypto import jwk, jwt
from sqlalchemy import select

from lti_tool.store.db import utcnow
from lti_tool.store.models.catalogue import MicroCredential, MicroCredentialVersion, Offering
from lti_tool.store.models.core import Context, Platform
from testkit.lti import LTI, FormReader, fixture_claims, login_and_launch

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
JSON = {"Accept": "application/json"}


def approved_mc(db, platform_id: int, code: str = "DATA-101") -> MicroCredentialVersion:
    """An approved micro-credential version, as the Office leaves it after approval."""
    mc = MicroCredential(platform_id=platform_id, institution_id=db.get(Platform,
                         platform_id).institution_id, code=code)
    db.add(mc)
    db.flush()
    version = MicroCredentialVersion(
        # The mandatory EU micro-credential (Annex I) elements a credential states.
        participation_form="online", quality_assurance="Annual review by the Office",
        assessment_methods=["Project"],
        platform_id=platform_id, institution_id=mc.institution_id,
        micro_credential_id=mc.id, version=1, status="approved",
        title=f"Data Literacy {code}", description="Read and chart data.", kind="course",
        tqf_level=6, eqf_level=6, workload_hours=Decimal(25), approved_at=utcnow())
    db.add(version)
    db.commit()
    return version


def verify_response(client, token: str) -> dict:
    """Check the deep-linking response JWT against the tool's published JWKS, by hand."""
    keyset = jwk.JWKSet.from_json(json.dumps(client.get("/lti/jwks").json))
    header = json.loads(jwk.base64url_decode(token.split(".")[0]))
    assert header["alg"] == "RS256" and header["kid"] in {k["kid"] for k in
                                                           client.get("/lti/jwks").json["keys"]}
    verified = jwt.JWT(jwt=token, key=keyset, algs=["RS256"])
    return json.loads(verified.claims)


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)


def dl_launch(client, platform, key, **edits):
    claims = fixture_claims("moodle/id_token_instructor_deep_linking_request.json", platform)
    claims.update(edits)
    return login_and_launch(client, platform, key, claims)


def test_moodle_deep_linking_places_a_micro_credential(client, db, moodle, key):
    version = approved_mc(db, moodle.id)
    response = dl_launch(client, moodle, key)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/lti/deep-link")
    chooser = client.get(response.headers["Location"])
    page = chooser.get_data(as_text=True)
    assert chooser.status_code == 200 and "Data Literacy DATA-101" in page
    assert 'type="checkbox"' in page  # Moodle accepts multiple items
    assert f'data-lti-select="{version.id}"' in page and page.count("data-lti-select=") == 1

    returned = client.post("/lti/deep-link", data={"csrf_token": csrf_of(page),
                                                   "item": str(version.id)})
    assert returned.status_code == 200, returned.get_data(as_text=True)
    form = FormReader(returned.get_data(as_text=True))
    assert form.action.startswith("http://127.0.0.1:8100/mod/lti/contentitem_return.php")
    claims = verify_response(client, form.fields["JWT"])
    assert claims["iss"] == moodle.client_id and claims["aud"] == moodle.issuer
    assert claims[LTI + "deployment_id"] == "1"
    assert claims[LTI + "message_type"] == "LtiDeepLinkingResponse"
    assert claims[LTI + "version"] == "1.3.0" and claims["nonce"]
    assert claims["exp"] > claims["iat"]
    assert DL + "data" not in claims  # Moodle sent no data, so none is echoed
    offering = db.scalar(select(Offering))
    context = db.scalar(select(Context))
    assert (offering.context_id, offering.mc_version_id) == (context.id, version.id)
    [item] = claims[DL + "content_items"]
    assert item["type"] == "ltiResourceLink" and item["title"] == version.title
    assert item["url"] == "http://127.0.0.1:8000/lti/launch"
    assert item["custom"] == {"offering_id": str(offering.id)}


def test_cancel_returns_an_empty_response(client, db, moodle, key):
    response = dl_launch(client, moodle, key)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    returned = client.post("/lti/deep-link", data={"csrf_token": csrf_of(page), "cancel": "1"})
    claims = verify_response(client, FormReader(returned.get_data(as_text=True)).fields["JWT"])
    assert claims[DL + "content_items"] == []
    assert claims[DL + "msg"] == "Nothing was added: no micro-credential is approved yet."
    assert db.scalar(select(Offering)) is None


def test_empty_catalogue_says_nothing_is_approved_and_who_approves(client, db, moodle, key):
    page = client.get(dl_launch(client, moodle, key).headers["Location"]).get_data(as_text=True)
    assert "Nothing is approved yet" in page and "Micro-credentials Office" in page
    assert "data-lti-select" not in page and ">Cancel<" in page


def test_cancel_with_a_catalogue_says_it_was_cancelled(client, db, moodle, key):
    approved_mc(db, moodle.id)
    page = client.get(dl_launch(client, moodle, key).headers["Location"]).get_data(as_text=True)
    returned = client.post("/lti/deep-link", data={"csrf_token": csrf_of(page), "cancel": "1"})
    claims = verify_response(client, FormReader(returned.get_data(as_text=True)).fields["JWT"])
    assert claims[DL + "content_items"] == []
    assert claims[DL + "msg"] == "Nothing was added: the instructor cancelled."


def test_response_needs_the_csrf_token_and_a_choice(client, db, moodle, key):
    version = approved_mc(db, moodle.id)
    page = client.get(dl_launch(client, moodle, key).headers["Location"]).get_data(as_text=True)
    forged = client.post("/lti/deep-link", data={"item": str(version.id)}, headers=JSON)
    assert forged.status_code == 403
    empty = client.post("/lti/deep-link", data={"csrf_token": csrf_of(page)}, headers=JSON)
    assert empty.status_code == 400 and "Choose at least one" in empty.json["message"]
    unknown = client.post("/lti/deep-link", data={"csrf_token": csrf_of(page), "item": "x"},
                          headers=JSON)
    assert unknown.status_code == 400
    assert db.scalar(select(Offering)) is None


@pytest.mark.parametrize("single", [False, "false"])
def test_single_item_platform_gets_radio_buttons_and_one_item(client, db, moodle, key, single):
    first, second = approved_mc(db, moodle.id, "A-1"), approved_mc(db, moodle.id, "B-2")
    settings = fixture_claims("moodle/id_token_instructor_deep_linking_request.json", moodle)[
        DL + "deep_linking_settings"]
    response = dl_launch(client, moodle, key, **{
        DL + "deep_linking_settings": {**settings, "accept_multiple": single}})
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'type="radio"' in page
    both = client.post("/lti/deep-link", data={"csrf_token": csrf_of(page),
                                               "item": [str(first.id), str(second.id)]},
                       headers=JSON)
    assert both.status_code == 400 and "only one item" in both.json["message"]


def test_resource_link_session_cannot_use_the_chooser(client, db, moodle, key):
    claims = fixture_claims("moodle/id_token_instructor_resource_link.json", moodle)
    assert login_and_launch(client, moodle, key, claims).status_code == 303
    response = client.get("/lti/deep-link", headers=JSON)
    assert response.status_code == 403 and "deep-linking launch" in response.json["message"]


def test_chooser_with_an_empty_catalogue_says_so(client, db, moodle, key):
    response = dl_launch(client, moodle, key)
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    assert "no approved micro-credential to place in this course yet" in page.get_data(as_text=True)


def test_chooser_needs_a_session(client):
    assert client.get("/lti/deep-link", headers=JSON).status_code == 401
    assert client.post("/lti/deep-link", data={"item": "1"}, headers=JSON).status_code == 401
