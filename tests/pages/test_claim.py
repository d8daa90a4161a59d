"""Badge claiming on the learner page: see, accept, download, share; only one's own."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

from lti_tool.badges.issuance import issue_on_pass
from lti_tool.store.db import utcnow
from lti_tool.store.institutions import InstitutionSpec, create_institution
from lti_tool.store.models.core import Platform
from lti_tool.web.auth import CSRF_HEADER, csrf_token
from testkit.seed import seed_decision
from tests.conftest import session_headers


def issued(db, settings, course, key: str):
    """learner `key` passed; the badges area issues their credential (real signature)."""
    decision = seed_decision(db, course, key, [90, 80, 75], status="passed")
    credential = issue_on_pass(db, settings, person_id=course.people[key],
                               mc_version_id=_version(db, course),
                               offering_id=decision.offering_id,
                               outcome_levels={"LO1": "advanced"}, passed_at=utcnow())
    db.commit()
    return credential


def _version(db, course) -> int:
    from lti_tool.store.models.catalogue import Offering

    return db.get(Offering, course.offering_id).mc_version_id


def csrf(app, token: str) -> dict:
    with app.test_request_context(headers=session_headers(token)):
        app.preprocess_request()
        return {CSRF_HEADER: csrf_token()}


def test_learner_sees_downloads_share_links_and_qr(client, db, settings, offered) -> None:
    credential = issued(db, settings, offered, "learner1")
    token = offered.tokens["learner1"]
    html = client.get("/learner/", headers=session_headers(token)).get_data(True)
    public = f"http://127.0.0.1:8000/credentials/{credential.public_id}"
    assert f'value="{public}"' in html  # the copyable verification link, no sid in it
    for ext in ("json", "jwt", "png", "svg"):
        assert f'href="/credentials/{credential.public_id}.{ext}"' in html
    assert '<svg role="img" aria-label="QR code of the verification link"' in html
    # The page links through the tool, which counts the share and redirects (no sid leaves it).
    share = next(part for part in html.split('"') if "/share/linkedin" in part)
    linkedin = client.get(share.replace("&amp;", "&")).location
    assert linkedin.startswith("https://www.linkedin.com/profile/add")
    query = parse_qs(urlparse(linkedin.replace("&amp;", "&")).query)
    assert query["startTask"] == ["CERTIFICATION_NAME"]
    assert query["name"] == ["Data Literacy Basics"] and query["certId"] == [credential.public_id]
    assert query["certUrl"] == [public] and query["issueYear"] == [str(utcnow().year)]
    # the awarding body is the issuing institution (its row), as the credential names it
    institution = db.get(Platform, offered.platform_id).institution
    assert query["organizationName"] == [institution.name]
    assert json.loads(credential.document)["issuer"]["name"] == institution.name
    assert token not in linkedin and f"{public}?sid" not in html
    # the public routes the page links to answer
    for ext in ("json", "jwt", "png", "svg"):
        assert client.get(f"/credentials/{credential.public_id}.{ext}").status_code == 200


def test_the_awarding_body_shared_is_the_catalogues_institution(client, db, settings,
                                                                 offered) -> None:
    """A registration moved to another institution after the issue (a consortium's shared
    service re-assigning an LMS) does not rename the awarding body on LinkedIn: it is the
    institution whose catalogue holds the micro-credential, as the signed credential says."""
    credential = issued(db, settings, offered, "learner1")
    issuer = json.loads(credential.document)["issuer"]["name"]
    moved_to = create_institution(db, InstitutionSpec(slug="consortium", name="Consortium",
                                                      country="TR"))
    db.get(Platform, offered.platform_id).institution_id = moved_to.id
    db.commit()
    html = client.get("/learner/", headers=session_headers(offered.tokens["learner1"]))
    share = next(part for part in html.get_data(True).split('"') if "/share/linkedin" in part)
    linkedin = client.get(share.replace("&amp;", "&")).location
    query = parse_qs(urlparse(linkedin).query)
    assert query["organizationName"] == [issuer] and issuer != "Consortium"


def test_accepting_is_recorded_once_and_only_for_ones_own(app, client, db, settings,
                                                          offered) -> None:
    credential = issued(db, settings, offered, "learner1")
    mine, other = offered.tokens["learner1"], offered.tokens["learner2"]
    url = f"/learner/credentials/{credential.public_id}/accept"
    # learner2 changes the id in the URL to learner1's credential: 404, nothing recorded
    stolen = client.post(url, headers={**session_headers(other), **csrf(app, other)})
    assert stolen.status_code == 404
    reply = client.post(url, headers={**session_headers(mine), **csrf(app, mine)})
    assert reply.status_code == 303 and "lc=" in reply.location and mine not in reply.location
    client.post(url, headers={**session_headers(mine), **csrf(app, mine)})
    from lti_tool.store.models.core import AuditEntry

    entries = db.query(AuditEntry).filter_by(action="credential.accepted").all()
    assert [(e.actor_person_id, e.target) for e in entries] == [
        (offered.people["learner1"], credential.public_id)]
    html = client.get("/learner/", headers=session_headers(mine)).get_data(True)
    assert "You accepted it on" in html and "Accept my badge" not in html
    assert credential.public_id not in client.get(
        "/learner/", headers=session_headers(other)).get_data(True)


def test_a_revoked_credential_shows_as_revoked(client, db, settings, offered) -> None:
    credential = issued(db, settings, offered, "learner1")
    credential.status, credential.revoked_at = "revoked", utcnow()
    credential.revoked_reason = "Assessment misconduct"
    db.commit()
    html = client.get("/learner/",
                      headers=session_headers(offered.tokens["learner1"])).get_data(True)
    assert "Revoked on" in html and "Assessment misconduct" in html
    assert "Add to LinkedIn profile" not in html and "Accept my badge" not in html


def test_credentials_from_elsewhere_are_listed_too(client, db, settings, offered) -> None:
    """A pathway (or another course's) credential has no offering here; it still shows."""
    from testkit.seed import Course, seed_offering

    elsewhere = seed_offering(db, Course(offered.platform_id, offered.context_id,
                                         offered.people, {}), code="PATH-1")
    from lti_tool.store.models.catalogue import Offering

    version_id = db.get(Offering, elsewhere.offering_id).mc_version_id
    db.delete(db.get(Offering, elsewhere.offering_id))  # not offered in this course
    db.commit()
    held = issue_on_pass(db, settings, person_id=offered.people["learner1"],
                         mc_version_id=version_id, offering_id=None, outcome_levels={},
                         passed_at=utcnow(), via_pathway=True)
    db.commit()
    html = client.get("/learner/",
                      headers=session_headers(offered.tokens["learner1"])).get_data(True)
    others = html[html.index("Your other credentials"):]
    assert f"/credentials/{held.public_id}.json" in others and "Accept my badge" in others
    assert "Your other credentials" not in client.get(
        "/learner/", headers=session_headers(offered.tokens["learner2"])).get_data(True)


def test_a_pass_held_until_revalidation_is_explained(client, db, settings, offered) -> None:
    from lti_tool.store.models.catalogue import MicroCredentialVersion

    seed_decision(db, offered, "learner1", [90, 90, 90], status="passed")
    db.query(MicroCredentialVersion).one().status = "lapsed"
    db.commit()
    held = issue_on_pass(db, settings, person_id=offered.people["learner1"],
                         mc_version_id=_version(db, offered), offering_id=offered.offering_id,
                         outcome_levels={}, passed_at=utcnow())
    db.commit()
    assert held is None  # the badges area held the pass
    html = client.get("/learner/",
                      headers=session_headers(offered.tokens["learner1"])).get_data(True)
    assert "Your badge is issued as soon as the Office revalidates" in html
    assert f"/learner/offerings/{offered.offering_id}/evidence.json" in html
