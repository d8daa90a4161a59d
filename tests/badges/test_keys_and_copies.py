"""Key rotation, the optional EdDSA VC-JWT, the issuer profile, and the shipped standard files."""

from __future__ import annotations

import json

import jsonschema

from lti_tool.badges import issuance, jsonld, statuslist, vcjwt
from lti_tool.badges.builder import issuer_profile
from lti_tool.badges.signing import issuer_facts, published_multikeys
from lti_tool.badges.verify import SCHEMA_FILE, Verifier
from lti_tool.settings import load_settings
from lti_tool.store import keys
from tests.badges.conftest import PASSED_AT
from tests.conftest import SPEC


def _issue(world, sub: str, version):
    person = world.person(sub, f"{sub}@example.edu")
    return issuance.issue_on_pass(world.db, world.settings, person_id=person.id,
                                  mc_version_id=version.id, offering_id=None,
                                  outcome_levels={"LO1": "proficient"}, passed_at=PASSED_AT)


def test_credentials_signed_before_a_rotation_still_verify(world) -> None:
    version = world.micro_credential(outcomes=1)
    old = _issue(world, "old", version)
    for purpose in ("badge-ed25519", "badge-rsa"):
        keys.rotate(world.db, world.settings, purpose,
                    institution_id=world.platform.institution_id)
    new = _issue(world, "new", version)
    assert json.loads(old.document)["proof"][0]["verificationMethod"] != \
        json.loads(new.document)["proof"][0]["verificationMethod"]
    assert len(published_multikeys(world.db, world.settings, world.platform.institution)) == 2
    verifier = Verifier(world.db, world.settings)
    for credential in (old, new):
        for data in (credential.document, credential.jwt):
            assert verifier.verify_bytes(data.encode()).valid


def test_eddsa_vc_jwt_is_an_option(world) -> None:
    world.settings = load_settings(overrides={
        "database_url": world.settings.database_url, "data_dir": world.settings.data_dir,
        "testing": True, "badge_jwt_alg": "EdDSA"}, environ={})
    credential = _issue(world, "ed", world.micro_credential(outcomes=1))
    header, _payload = vcjwt.unverified(credential.jwt)
    assert header["alg"] == "EdDSA" and header["kid"].split("/")[-1].startswith("badge-ed25519")
    assert Verifier(world.db, world.settings).verify_bytes(credential.jwt.encode()).valid


def test_issuer_profile_is_a_valid_ob3_profile_and_controller(world) -> None:
    profile = issuer_profile(issuer_facts(world.settings, world.platform.institution),
                             published_multikeys(world.db, world.settings,
                                                 world.platform.institution))
    schema = json.loads((SPEC / "openbadges/schemas/profile.json").read_text())
    body = {k: v for k, v in profile.items() if k != "@context"}
    errors = [e.message for e in jsonschema.Draft201909Validator(schema).iter_errors(body)]
    assert not errors
    assert profile["assertionMethod"] == [m["id"] for m in profile["verificationMethod"]]
    expanded = jsonld.expand(profile, jsonld.loader_for(world.settings.base_url))
    assert expanded and "https://w3id.org/security#assertionMethod" in json.dumps(expanded)


def test_shipped_contexts_and_schema_are_the_standards_own() -> None:
    source = SPEC / "openbadges"
    index = json.loads((source / "contexts/index.json").read_text())
    for url, name in index.items():
        shipped = (jsonld.CONTEXT_DIR / name).read_text()
        assert shipped == (source / "contexts" / name).read_text(), url
    assert SCHEMA_FILE.read_text() == (source / "schemas/achievementcredential.json").read_text()


def test_bitstring_order_and_encoding() -> None:
    bits = statuslist.set_bit(statuslist.empty_bits(), 0)
    bits = statuslist.set_bit(bits, 131071)
    assert bits[0] == 0b1000_0000 and bits[-1] == 0b0000_0001
    decoded = statuslist.decode(statuslist.encode(bits))
    assert decoded == bits and len(decoded) == 16384
    assert statuslist.get_bit(decoded, 0) and not statuslist.get_bit(decoded, 1)
    assert not statuslist.get_bit(statuslist.set_bit(bits, 0, False), 0)


def test_medal_png_draws_for_every_colour() -> None:
    """Seeds whose blue channel is high once made the centre pixel overflow a byte (a 500 on
    the PNG download and the Europass export); every seed draws a valid PNG now."""
    import png

    from lti_tool.badges import images

    bright = next(seed for seed in map(str, range(1000))
                  if images._colour(seed)[2] + 60 > 255)
    width, height, _rows, _info = png.Reader(bytes=images.medal_png(bright, 16)).read()
    assert (width, height) == (16, 16)


def test_shipped_edc_context_is_the_commissions_own() -> None:
    assert (jsonld.CONTEXT_DIR / "edc-ap-context.jsonld").read_text() \
        == (SPEC / "elm/edc-ap-context.jsonld").read_text()
