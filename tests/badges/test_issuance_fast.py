"""The fast issuance path (issue 19) keeps what the general one guaranteed.

- `vcjwt.sign_with` (direct RS256/EdDSA compact JWS) gives jwcrypto's token byte for byte, on
  generated credentials of every shape the builder makes;
- parsed badge keys are cached per process by kid and key version, yet a rotation takes effect
  at the next issuance, and a key whose stored material changes (or whose file becomes
  readable by others) is read again;
- the cached open status list is checked by the insert itself: a stale slot (another database,
  a rolled-back list) is noticed and replaced, and full lists are closed;
- a learner of another institution still gets nothing; one issuance is two statements, and a
  pathway is still issued when its last component is.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwcrypto import jwk
from sqlalchemy import event, func, select

from lti_tool.badges import issuance, signing, status, statuslist, vcjwt
from lti_tool.badges.signing import Signer
from lti_tool.errors import Forbidden
from lti_tool.secrets import InsecureSecretFile, write_secret
from lti_tool.store import keys
from lti_tool.store.institutions import InstitutionSpec, create_institution
from lti_tool.store.models.badges import Credential, StatusList
from lti_tool.store.models.core import Institution, Person, Platform, ToolKey
from tests.badges.conftest import PASSED_AT, World, assert_schema_valid, issue_passed
from tests.badges.test_fastcanon import credentials

RSA_KEY = jwk.JWK.generate(kty="RSA", size=2048, alg="RS256", kid="rsa-test")
ED_KEY = jwk.JWK.generate(kty="OKP", crv="Ed25519", alg="EdDSA", kid="ed-test")


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(credentials(), st.sampled_from([RSA_KEY, ED_KEY]),
       st.sampled_from(["https://tool.example.edu/keys/k1", "https://t.example/keys/ü-\"2"]))
def test_direct_vc_jwt_is_jwcrypto_token_byte_for_byte(credential, key, kid_url) -> None:
    general = vcjwt.sign(credential, key, kid_url)
    fast = vcjwt.sign_with(credential, key.get_op_key("sign"), key.get("alg"), kid_url)
    assert fast == general
    header, payload = vcjwt.unverified(fast)
    assert header == {"alg": key.get("alg"), "kid": kid_url, "typ": "JWT"}
    assert vcjwt.strip_claims(payload) == json.loads(json.dumps(credential))


def test_direct_signing_refuses_what_it_does_not_make() -> None:
    with pytest.raises(ValueError):
        vcjwt.sign_with({"issuer": "x", "id": "y", "validFrom": "2026-01-01T00:00:00Z"},
                        None, "ES256", "k")


def _issue(world: World, sub: str, version) -> Credential:
    return issue_passed(world, sub, version)


def _kids(credential: Credential) -> tuple[str, str]:
    header, _payload = vcjwt.unverified(credential.jwt)
    return json.loads(credential.document)["proof"][0]["verificationMethod"], header["kid"]


def test_a_rotation_takes_effect_at_the_next_issuance_with_the_cache_warm(world) -> None:
    version = world.micro_credential(outcomes=1)
    first = _issue(world, "a", version)
    assert _kids(_issue(world, "b", version)) == _kids(first)  # the same keys, cached
    institution_id = world.platform.institution_id
    new_keys = {purpose: keys.rotate(world.db, world.settings, purpose,
                                     institution_id=institution_id)[0]
                for purpose in (signing.ED25519, signing.RSA)}
    rotated = _issue(world, "c", version)
    method, kid_url = _kids(rotated)
    assert method != _kids(first)[0] and kid_url != _kids(first)[1]
    assert kid_url == signing.key_url(world.settings, new_keys[signing.RSA].kid)
    ed_new = signing.parsed_key(new_keys[signing.ED25519], world.settings)
    assert method.endswith("#" + ed_new.multikey)
    # a retired key is no longer used, and what it signed still verifies
    from lti_tool.badges.verify import Verifier

    verifier = Verifier(world.db, world.settings)
    for credential in (first, rotated):
        for data in (credential.document, credential.jwt):
            assert verifier.verify_bytes(data.encode()).valid


def test_a_rotation_by_another_process_takes_effect_at_the_next_issuance(world, runtime) -> None:
    version = world.micro_credential(outcomes=1)
    first = _issue(world, "a", version)
    world.db.commit()
    with runtime.sessions() as other:  # `lti-tool keys rotate` in another process
        new = {purpose: keys.rotate(other, world.settings, purpose,
                                    institution_id=world.platform.institution_id)[0].kid
               for purpose in (signing.ED25519, signing.RSA)}
        other.commit()
    rotated = _issue(world, "b", version)  # the cached keys are stale: read again
    method, kid_url = _kids(rotated)
    assert kid_url == signing.key_url(world.settings, new[signing.RSA])
    assert method != _kids(first)[0]
    row = keys.active_key(world.db, world.settings, signing.ED25519,
                          institution_id=world.platform.institution_id)
    assert row.kid == new[signing.ED25519]
    assert method.endswith("#" + signing.parsed_key(row, world.settings).multikey)
    assert _kids(_issue(world, "c", version)) == (method, kid_url)  # and cached again


def test_a_deactivated_key_or_one_that_was_rolled_back_is_not_signed_with(world) -> None:
    version = world.micro_credential(outcomes=1)
    world.db.commit()
    _issue(world, "rolled-back", version)  # makes the keys, then the transaction is undone
    world.db.rollback()
    assert world.db.scalar(select(func.count()).select_from(ToolKey)) == 0
    first = _issue(world, "a", version)
    assert world.db.scalar(select(func.count()).select_from(ToolKey)) == 2
    for row in world.db.scalars(select(ToolKey)):
        row.active = False  # by hand: no active key left, as on first use
    second = _issue(world, "b", version)
    assert set(_kids(second)).isdisjoint(_kids(first))
    assert world.db.scalar(select(func.count()).select_from(ToolKey)) == 4


def test_a_newer_active_key_is_signed_with_though_the_older_one_stays_active(world) -> None:
    version = world.micro_credential(outcomes=1)
    first = _issue(world, "a", version)
    # two processes that made a first key at once: both active, the newest is the one used
    newer = keys._create(world.db, world.settings, signing.RSA,
                         institution_id=world.platform.institution_id)
    _method, kid_url = _kids(_issue(world, "b", version))
    assert kid_url == signing.key_url(world.settings, newer.kid) != _kids(first)[1]


def test_a_key_row_pointing_at_another_private_key_is_read_again(world) -> None:
    version = world.micro_credential(outcomes=1)
    first = _issue(world, "a", version)
    row = keys.active_key(world.db, world.settings, signing.RSA,
                          institution_id=world.platform.institution_id)
    replacement = jwk.JWK.generate(kty="RSA", size=2048)
    if row.private_pem:
        from lti_tool.secrets import seal

        row.private_pem = seal(world.settings,
                               replacement.export_to_pem(private_key=True, password=None).decode())
    else:
        path = __import__("pathlib").Path(world.settings.data_dir) / "keys" / "replaced.pem"
        write_secret(path, replacement.export_to_pem(private_key=True, password=None))
        row.private_path = str(path)
    second = _issue(world, "b", version)
    assert _kids(second) == _kids(first)
    checked = __import__("jwcrypto.jws", fromlist=["JWS"]).JWS()
    checked.deserialize(second.jwt)
    checked.verify(replacement)  # signed with the key the row now points at


def test_a_key_whose_stored_material_changes_is_parsed_again(world) -> None:
    institution_id = world.platform.institution_id
    row = keys.active_key(world.db, world.settings, signing.RSA, institution_id=institution_id)
    before = signing.parsed_key(row, world.settings)
    assert signing.parsed_key(row, world.settings) is before  # cached
    if row.private_pem:
        replacement = jwk.JWK.generate(kty="RSA", size=2048)
        from lti_tool.secrets import seal

        row.private_pem = seal(world.settings,
                               replacement.export_to_pem(private_key=True, password=None).decode())
    else:
        path = row.private_path or ""
        replacement = jwk.JWK.generate(kty="RSA", size=2048)
        write_secret(__import__("pathlib").Path(path),
                     replacement.export_to_pem(private_key=True, password=None))
        os.utime(path, ns=(1, 1))  # a different version even within one clock tick
    after = signing.parsed_key(row, world.settings)
    assert after is not before
    assert after.jwk.thumbprint() == replacement.thumbprint()
    assert [key for key in signing._PARSED if key[0] == row.kid] == \
        [(row.kid, signing.key_version(row))]  # the old version is dropped
    if not row.private_pem:
        os.chmod(row.private_path or "", 0o644)
        with pytest.raises(InsecureSecretFile):
            signing.parsed_key(row, world.settings)  # checked again, not served from cache


def test_a_stale_cached_status_list_is_noticed_and_replaced(world) -> None:
    version = world.micro_credential(outcomes=1)
    signer = Signer.load(world.db, world.settings, world.platform.institution)
    key = status._cache_key(world.db, world.platform.institution_id)
    # as if the process had cached a list of another database, or one that was rolled back
    status._OPEN[key] = status._Cached(status.ListSlot(id=1, public_id="gone", size=131072),
                                       uses_left=100)
    credential = _issue(world, "a", version)
    listed = world.db.get(StatusList, credential.status_list_id)
    assert listed is not None and listed.public_id != "gone"
    entry = json.loads(credential.document)["credentialStatus"]
    assert entry["statusListCredential"] == status.list_url(world.settings, listed.public_id)
    assert entry["statusListIndex"] == str(credential.status_index)
    assert status._OPEN[key].slot.public_id == listed.public_id
    assert status.current_list(world.db, world.settings, signer).public_id == listed.public_id


def test_full_lists_are_closed_and_new_ones_signed(world, monkeypatch) -> None:
    monkeypatch.setattr(statuslist, "FILL_LIMIT", 3)
    monkeypatch.setattr(status, "RECOUNT_EVERY", 2)
    status._OPEN.clear()
    version = world.micro_credential(outcomes=1)
    issued = [_issue(world, f"p{i}", version) for i in range(8)]
    per_list = dict(world.db.execute(
        select(Credential.status_list_id, func.count()).group_by(Credential.status_list_id)
    ).all())
    assert len(per_list) >= 3 and max(per_list.values()) <= 3
    assert len({(c.status_list_id, c.status_index) for c in issued}) == 8
    for list_id in per_list:
        row = world.db.get(StatusList, list_id)
        assert row is not None and json.loads(row.signed_credential)["proof"]


def test_another_institutions_learner_gets_nothing(world) -> None:
    version = world.micro_credential(outcomes=1)
    other = create_institution(world.db, InstitutionSpec(slug="other", name="Other", country="TR"))
    platform = Platform(institution_id=other.id, status="active", issuer="https://other.example",
                        client_id="tool", auth_login_url="https://other.example/a",
                        auth_token_url="https://other.example/t")
    world.db.add(platform)
    world.db.flush()
    stranger = Person(platform_id=platform.id, sub="s", name="S", email="s@x.edu")
    world.db.add(stranger)
    world.db.flush()
    with pytest.raises(Forbidden):
        issuance.issue_on_pass(world.db, world.settings, person_id=stranger.id,
                               mc_version_id=version.id, offering_id=None, outcome_levels={},
                               passed_at=PASSED_AT)
    assert world.db.scalar(select(func.count()).select_from(Credential)) == 0


def test_one_issuance_is_one_statement(world) -> None:
    version = world.micro_credential(outcomes=1)
    _issue(world, "warm", version)  # keys made and parsed, list opened and cached
    person = world.person("counted", "c@example.edu")
    # what the evaluation's transaction has loaded already (the session holds it weakly)
    held = (world.db.get(Platform, person.platform_id),
            world.db.get(Institution, version.institution_id))
    statements: list[str] = []
    engine = world.db.get_bind()

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(" ".join(statement.split())[:300])

    event.listen(engine, "before_cursor_execute", count)
    try:
        credential = issuance.issue_on_pass(world.db, world.settings, person_id=person.id,
                                            mc_version_id=version.id, offering_id=None,
                                            outcome_levels={"LO1": "proficient"},
                                            passed_at=PASSED_AT)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # the insert (with its status index, the institution check, the check that the cached
    # keys are still the active ones, and whether a pathway requires the micro-credential:
    # none does here, so no pathway query follows)
    assert len(statements) == 1, statements
    assert credential is not None and all(held)
    assert_schema_valid(json.loads(credential.document))


def test_the_pathway_flag_of_the_insert_still_issues_a_completed_pathway(world) -> None:
    person = world.person()
    first, second = world.micro_credential("A-1"), world.micro_credential("B-2")
    pathway = world.micro_credential("PATH", outcomes=0, requires=(first.micro_credential,
                                                                   second.micro_credential))
    unrelated = world.micro_credential("C-3")
    for version in (unrelated, first, second):
        issuance.issue_on_pass(world.db, world.settings, person_id=person.id,
                               mc_version_id=version.id, offering_id=None,
                               outcome_levels={"LO1": "proficient"}, passed_at=PASSED_AT)
    awarded = issuance.find_credential(world.db, person.id, pathway.id)
    assert awarded is not None and awarded.via_pathway
    pathway.status = "retired"  # a pathway that may not issue does not count
    world.db.flush()
    other = world.person("p2", "p2@example.edu")
    for version in (first, second):
        issuance.issue_on_pass(world.db, world.settings, person_id=other.id,
                               mc_version_id=version.id, offering_id=None,
                               outcome_levels={"LO1": "proficient"}, passed_at=PASSED_AT)
    assert issuance.find_credential(world.db, other.id, pathway.id) is None


def test_a_list_opened_in_a_rolled_back_transaction_is_not_used(world) -> None:
    version = world.micro_credential(outcomes=1)
    person = world.person("a", "a@example.edu")
    world.db.commit()
    status._OPEN.clear()
    issuance.issue_on_pass(world.db, world.settings, person_id=person.id,
                           mc_version_id=version.id, offering_id=None,
                           outcome_levels={"LO1": "proficient"}, passed_at=PASSED_AT)
    world.db.rollback()  # the list it opened (and cached), its keys and the credential are gone
    assert world.db.scalar(select(func.count()).select_from(StatusList)) == 0
    credential = issuance.issue_on_pass(world.db, world.settings, person_id=person.id,
                                        mc_version_id=version.id, offering_id=None,
                                        outcome_levels={"LO1": "proficient"},
                                        passed_at=PASSED_AT)
    world.db.commit()
    assert credential is not None
    listed = world.db.get(StatusList, credential.status_list_id)
    assert listed is not None
    entry = json.loads(credential.document)["credentialStatus"]
    assert entry["statusListCredential"] == status.list_url(world.settings, listed.public_id)
    from lti_tool.badges.verify import Verifier

    assert Verifier(world.db, world.settings).verify_bytes(credential.jwt.encode()).valid
