"""Issuing on pass: the credential's content, both proofs, holding, pathways, idempotence."""

from __future__ import annotations

import json

from lti_tool.badges import issuance, jsonld, vcjwt
from lti_tool.badges.signing import jwk_resolver
from lti_tool.badges.verify import Verifier
from lti_tool.store.models.badges import Credential, HeldPass
from tests.badges.conftest import PASSED_AT, assert_schema_valid

LEVELS = {"LO1": "exemplary", "LO2": "proficient"}


def _issue(world, person, version, levels=LEVELS):
    return issuance.issue_on_pass(world.db, world.settings, person_id=person.id,
                                  mc_version_id=version.id, offering_id=None,
                                  outcome_levels=levels, passed_at=PASSED_AT)


def test_issued_credential_carries_the_micro_credential_and_validates(world) -> None:
    person, version = world.person(), world.micro_credential()
    credential = _issue(world, person, version)
    document = json.loads(credential.document)
    assert_schema_valid(document)
    subject = document["credentialSubject"]
    achievement = subject["achievement"]
    assert achievement["achievementType"] == "MicroCredential"
    assert achievement["id"] == world.settings.url(f"/achievements/{version.id}")
    assert achievement["creditsAvailable"] == 2
    assert {a["targetFramework"] for a in achievement["alignment"]} == {
        "European Qualifications Framework", "Turkish Qualifications Framework", "ISCED-F 2013"}
    assert "LO1" in achievement["criteria"]["narrative"]
    assert "Proficient (70% or more)" in achievement["criteria"]["narrative"]
    assert [r["achievedLevel"].rsplit("-", 1)[1] for r in subject["result"]] == [
        "exemplary", "proficient", "proficient"]  # LO1, LO2, then the overall (lowest) level
    assert subject["result"][-1]["resultDescription"].endswith("#overall")
    email = next(i for i in subject["identifier"] if i["identityType"] == "emailAddress")
    assert email["hashed"] and "ada@" not in json.dumps(document)
    assert document["credentialStatus"]["type"] == "BitstringStatusListEntry"
    assert document["issuer"]["id"] == world.settings.url("/issuers/test-university")
    assert document["issuer"]["name"] == "Test University"
    assert achievement["notionalWorkloadHours"] == "25"


def test_extension_terms_survive_json_ld_expansion(world) -> None:
    credential = _issue(world, world.person(), world.micro_credential())
    expanded = json.dumps(jsonld.expand(json.loads(credential.document),
                                        jsonld.loader_for(world.settings.base_url)))
    vocab = "https://w3id.org/lti-microcredentials/vocab#"  # independent of the deployment
    assert json.loads(credential.document)["@context"][-1] == jsonld.EXTENSION_V2
    for term in jsonld.EXTENSION_TERMS:
        assert vocab + term in expanded, term
    assert world.settings.base_url + "/contexts" not in expanded


def _values(node, key: str) -> list:
    """Every `@value` (or `@id`) under `key` anywhere in an expanded JSON-LD document."""
    found: list = []
    if isinstance(node, list):
        for item in node:
            found += _values(item, key)
    elif isinstance(node, dict):
        for name, value in node.items():
            if name == key:
                found += [v.get("@value", v.get("@id")) for v in value]
            found += _values(value, key)
    return found


def test_field_of_study_and_participation_form_come_from_the_design_plan(world) -> None:
    """Issue 7: `fieldOfStudy`; Art. 6/2-e: the EU form of participation as an extension term."""
    credential = _issue(world, world.person(), world.micro_credential())
    document = json.loads(credential.document)
    assert_schema_valid(document)
    achievement = document["credentialSubject"]["achievement"]
    assert achievement["fieldOfStudy"] == "Data science"
    online = "http://data.europa.eu/snb/learning-assessment/920fbb3cbe"  # the EU's own IRI
    assert achievement["participationForm"] == online
    isced = [a for a in achievement["alignment"] if a["targetFramework"] == "ISCED-F 2013"]
    assert isced == [{"type": ["Alignment"], "targetName": "Data science",
                      "targetFramework": "ISCED-F 2013", "targetCode": "0542",
                      "targetUrl": "http://data.europa.eu/snb/isced-f/0542",
                      "targetType": "ext:ISCED-F"}]
    expanded = jsonld.expand(document, jsonld.loader_for(world.settings.base_url))
    vocab = "https://w3id.org/lti-microcredentials/vocab#"
    ob = "https://purl.imsglobal.org/spec/vc/ob/vocab.html#"
    assert _values(expanded, ob + "fieldOfStudy") == ["Data science"]
    assert _values(expanded, vocab + "participationForm") == [online]
    assert "0542" in _values(expanded, ob + "targetCode")
    header, payload = vcjwt.verify(credential.jwt, jwk_resolver(world.db, world.settings,
                                                                world.platform.institution))
    assert payload["credentialSubject"]["achievement"]["fieldOfStudy"] == "Data science"


def test_both_proofs_verify_and_the_jwt_follows_ob3_claim_rules(world) -> None:
    credential = _issue(world, world.person(), world.micro_credential())
    header, payload = vcjwt.verify(credential.jwt, jwk_resolver(world.db, world.settings,
                                                                world.platform.institution))
    document = json.loads(credential.document)
    assert header["alg"] == "RS256" and header["typ"] == "JWT"
    assert header["kid"].startswith(world.settings.url("/keys/"))
    assert payload["iss"] == document["issuer"]["id"] and payload["jti"] == document["id"]
    assert payload["sub"] == document["credentialSubject"]["id"]
    assert vcjwt.strip_claims(payload) == document
    assert_schema_valid(payload)
    for data in (credential.document.encode(), credential.jwt.encode()):
        report = Verifier(world.db, world.settings).verify_bytes(data)
        assert report.valid, report.to_dict()


def test_issuing_twice_returns_the_same_credential(world) -> None:
    person, version = world.person(), world.micro_credential()
    first = _issue(world, person, version)
    again = _issue(world, person, version, {"LO1": "proficient", "LO2": "proficient"})
    assert again.id == first.id
    assert world.db.query(Credential).count() == 1


def test_a_lapsed_micro_credential_holds_the_pass_until_revalidated(world) -> None:
    person, version = world.person(), world.micro_credential(status="lapsed")
    assert _issue(world, person, version) is None
    assert _issue(world, person, version) is None
    assert world.db.query(HeldPass).count() == 1
    assert issuance.issue_held(world.db, world.settings, version.id) == []
    version.status = "approved"
    issued = issuance.issue_held(world.db, world.settings, version.id)
    assert [c.person_id for c in issued] == [person.id]
    assert world.db.query(HeldPass).one().released_at is not None
    assert issuance.issue_held(world.db, world.settings, version.id) == []


def test_pathway_is_issued_when_every_component_is_held(world) -> None:
    person = world.person()
    first, second = world.micro_credential("A-1"), world.micro_credential("B-2")
    pathway = world.micro_credential("PATH", outcomes=0, requires=(first.micro_credential,
                                                                   second.micro_credential))
    _issue(world, person, first)
    assert issuance.find_credential(world.db, person.id, pathway.id) is None
    _issue(world, person, second)
    awarded = issuance.find_credential(world.db, person.id, pathway.id)
    assert awarded is not None and awarded.via_pathway
    document = json.loads(awarded.document)
    assert_schema_valid(document)
    assert "A-1" in document["credentialSubject"]["achievement"]["criteria"]["narrative"]


def test_status_indexes_are_random_not_sequential(world) -> None:
    version = world.micro_credential()
    indexes = [_issue(world, world.person(f"p{i}", f"p{i}@x.edu"), version).status_index
               for i in range(6)]
    assert len(set(indexes)) == 6
    assert indexes != sorted(indexes) or max(indexes) - min(indexes) > 100


def test_a_taken_status_index_is_drawn_again(world, monkeypatch) -> None:
    """Random indexes collide now and then; the constraint catches it and a new one is drawn."""
    version = world.micro_credential()
    first = _issue(world, world.person("a", "a@x.edu"), version)
    draws = iter([first.status_index, first.status_index, 4242])
    monkeypatch.setattr(issuance.statuslist, "random_index", lambda size: next(draws))
    second = _issue(world, world.person("b", "b@x.edu"), version)
    assert second.status_index == 4242 and second.id != first.id
    assert json.loads(second.document)["credentialStatus"]["statusListIndex"] == "4242"
