"""The per-process cache of verification keys (issue 19) keeps what the full read guaranteed.

Each hit of the cache is confirmed by one query of the key's row, so:
- a withdrawn Ed25519 key (unpublished, deleted, moved to another institution, its stored
  key replaced) is refused by the next verification, whether the change was made in this
  session (unflushed) or committed by another one (another process);
- a VC-JWT key is refused once its row is gone, moved or changed, as `find_public_key` did;
- a rotation is seen at once: the new key verifies, the old one still does;
- on generated sequences of such changes, the cached resolvers answer as the uncached
  reference (the resolvers as they were before the cache) does, key by key.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwcrypto import jwk
from sqlalchemy import delete, select, update

from lti_tool.badges import dataintegrity, jsonld, signing, vcjwt
from lti_tool.badges.multibase import ed25519_multikey
from lti_tool.badges.signing import ED25519, RSA, ed25519_resolver, jwk_resolver
from lti_tool.badges.verify import Verifier
from lti_tool.store import keys
from lti_tool.store.db import utcnow
from lti_tool.store.institutions import InstitutionSpec, create_institution
from lti_tool.store.models.badges import Credential
from lti_tool.store.models.core import Institution, ToolKey
from tests.badges.conftest import World, issue_passed


@pytest.fixture(autouse=True)
def _empty_caches() -> None:
    """Each test counts its own entries (PostgreSQL tests share one database URL)."""
    signing._BY_METHOD.clear()
    signing._BY_KID.clear()


def _issue(world: World, sub: str) -> Credential:
    return issue_passed(world, sub, world.micro_credential(code=f"MC-{sub}", outcomes=1))


def _institution(world: World) -> Institution:
    institution = world.db.get(Institution, world.platform.institution_id)
    assert institution is not None
    return institution


def _proof_ok(world: World, credential: Credential, institution: Institution | None = None) -> bool:
    resolve = ed25519_resolver(world.db, world.settings, institution or _institution(world))
    try:
        dataintegrity.verify(json.loads(credential.document), resolve,
                             jsonld.loader_for(world.settings.base_url))
    except dataintegrity.ProofError:
        return False
    return True


def _jwt_ok(world: World, credential: Credential, institution: Institution | None = None) -> bool:
    try:
        vcjwt.verify(credential.jwt, jwk_resolver(world.db, world.settings,
                                                  institution or _institution(world)))
    except vcjwt.JwtError:
        return False
    return True


def _key(world: World, purpose: str) -> ToolKey:
    return keys.active_key(world.db, world.settings, purpose,
                           institution_id=world.platform.institution_id)


def _cached() -> tuple[int, int]:
    """How many keys are cached (Ed25519 methods, kids)."""
    return len(signing._BY_METHOD), len(signing._BY_KID)


def test_the_cache_is_filled_and_a_hit_sends_one_light_query(world) -> None:
    from sqlalchemy import event

    credential = _issue(world, "a")
    assert _proof_ok(world, credential) and _jwt_ok(world, credential)
    assert _cached() == (1, 1)
    statements: list[str] = []

    def counted(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    engine, institution = world.db.get_bind().engine, _institution(world)
    event.listen(engine, "before_cursor_execute", counted)
    try:
        assert _proof_ok(world, credential, institution)
        assert _jwt_ok(world, credential, institution)
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    assert len(statements) == 2, statements  # one per resolution: the key's own row


def test_a_withdrawn_ed25519_key_is_refused_at_once_in_this_session(world) -> None:
    credential, institution = _issue(world, "a"), _institution(world)
    assert _proof_ok(world, credential, institution) and _cached()[0] == 1
    row = _key(world, ED25519)
    row.active, row.retired_at = False, utcnow()
    row.publish_until = utcnow() - timedelta(seconds=1)  # withdrawn, not flushed
    assert not _proof_ok(world, credential, institution)
    row.publish_until = utcnow() + timedelta(hours=1)  # published a while longer
    assert _proof_ok(world, credential, institution)
    assert Verifier(world.db, world.settings).verify_bytes(credential.document.encode()).valid


def test_a_key_withdrawn_by_another_process_is_refused_at_once(world, runtime) -> None:
    credential = _issue(world, "a")
    world.db.commit()
    assert _proof_ok(world, credential) and _jwt_ok(world, credential)
    ed, rsa = _key(world, ED25519).kid, _key(world, RSA).kid
    world.db.commit()
    with runtime.sessions() as other:  # another process: a committed change
        other.execute(update(ToolKey).where(ToolKey.kid == ed).values(
            active=False, publish_until=utcnow() - timedelta(seconds=1)))
        other.execute(delete(ToolKey).where(ToolKey.kid == rsa))
        other.commit()
    assert not _proof_ok(world, credential)
    assert not _jwt_ok(world, credential)
    report = Verifier(world.db, world.settings).verify_bytes(credential.jwt.encode())
    assert not report.valid


def test_a_replaced_or_moved_key_is_refused_by_both_resolvers(world) -> None:
    credential = _issue(world, "a")
    assert _proof_ok(world, credential) and _jwt_ok(world, credential)
    ed, rsa = _key(world, ED25519), _key(world, RSA)
    stored = dict(ed.public_jwk)
    # the same kid now stores another key: what the old key signed no longer verifies
    other = jwk.JWK.generate(kty="OKP", crv="Ed25519").export_public(as_dict=True)
    ed.public_jwk = {**other, "kid": ed.kid, "alg": "EdDSA", "use": "sig"}
    assert not _proof_ok(world, credential)
    ed.public_jwk = stored
    assert _proof_ok(world, credential)
    elsewhere = create_institution(world.db, InstitutionSpec(slug="elsewhere", name="Elsewhere",
                                                             country="DE"))
    ed.institution_id = rsa.institution_id = elsewhere.id  # moved to another institution
    assert not _proof_ok(world, credential) and not _jwt_ok(world, credential)
    ed.institution_id = rsa.institution_id = world.platform.institution_id
    assert _proof_ok(world, credential) and _jwt_ok(world, credential)


def test_a_rotation_is_seen_at_once_with_the_cache_warm(world) -> None:
    old = _issue(world, "old")
    assert _proof_ok(world, old) and _jwt_ok(world, old)
    for purpose in (ED25519, RSA):
        keys.rotate(world.db, world.settings, purpose,
                    institution_id=world.platform.institution_id)
    new = _issue(world, "new")
    for credential in (new, old, new):
        assert _proof_ok(world, credential) and _jwt_ok(world, credential)
    assert _cached() == (2, 2)


# The resolvers as they were before the cache: the reference the cached ones must equal.
def _reference_ed25519(world: World, institution_id: int, multikey: str) -> bytes | None:
    for row in keys.published_keys(world.db, world.settings, ED25519,
                                   institution_id=institution_id):
        public = jwk.JWK(**row.public_jwk).get_op_key("verify")
        if ed25519_multikey(public) == multikey:
            return public.public_bytes_raw()
    return None


def _reference_jwk(world: World, institution_id: int, kid: str) -> dict | None:
    row = keys.find_public_key(world.db, kid, institution_id=institution_id)
    if row is None or row.purpose not in (RSA, ED25519):
        return None
    return jwk.JWK(**row.public_jwk).export_public(as_dict=True)


OPERATIONS = ("withdraw", "publish_later", "publish_for_ever", "activate", "deactivate",
              "swap_key", "move", "move_back", "delete", "restore", "flush", "commit")
COLUMNS = ("id", "kid", "purpose", "algorithm", "institution_id", "public_jwk", "private_pem",
           "private_path", "active", "created_at", "retired_at", "publish_until")


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(OPERATIONS), st.integers(0, 4)), max_size=12))
def test_cached_resolvers_answer_as_the_full_read(world, operations) -> None:
    db, institution_id = world.db, world.platform.institution_id
    pool = _key_pool(world)  # as the rows were: each example starts from them
    multikeys = {kid: multikey_of(row["public_jwk"]) for kid, row in pool.items()
                 if row["purpose"] == ED25519}
    elsewhere = _elsewhere(world)
    kids = list(pool)
    try:
        for operation, index in [("flush", 0), *operations]:
            _apply(world, operation, kids[index], pool, elsewhere)
            for kid in kids:
                if kid in multikeys:
                    cached = signing.published_ed25519(db, world.settings, institution_id,
                                                       multikeys[kid])
                    got = cached.ed25519.public_bytes_raw() if cached and cached.ed25519 else None
                    assert got == _reference_ed25519(world, institution_id, multikeys[kid]), \
                        (operation, kid)
                found = signing.badge_key(db, institution_id, kid)
                assert (found.jwk.export_public(as_dict=True) if found else None) \
                    == _reference_jwk(world, institution_id, kid), (operation, kid)
    finally:
        db.rollback()
        # a resolution that found no active key made one (published_keys, as before)
        db.execute(delete(ToolKey).where(
            ToolKey.institution_id.in_([institution_id, elsewhere.id]),
            ToolKey.kid.not_in(list(pool))))
        for kid, columns in pool.items():
            row = _row(world, kid)
            if row is None:
                db.add(ToolKey(**_without_id(columns)))
            else:
                for name, value in _without_id(columns).items():
                    setattr(row, name, value)
        db.commit()


def _without_id(columns: dict) -> dict:
    return {name: value for name, value in columns.items() if name != "id"}


def multikey_of(public_jwk: dict) -> str:
    return ed25519_multikey(jwk.JWK(**public_jwk).get_op_key("verify"))


def _row(world: World, kid: str) -> ToolKey | None:
    return world.db.scalar(select(ToolKey).where(ToolKey.kid == kid))


def _key_pool(world: World) -> dict[str, dict]:
    """Three Ed25519 keys and two RSA keys of the world's institution (made once per test),
    each as its columns."""
    institution_id = world.platform.institution_id
    rows = world.db.scalars(select(ToolKey).where(ToolKey.institution_id == institution_id)
                            .order_by(ToolKey.id)).all()
    if len(rows) < 5:
        for purpose in (ED25519, ED25519, ED25519, RSA, RSA):
            keys.rotate(world.db, world.settings, purpose, institution_id=institution_id)
        world.db.commit()
        rows = world.db.scalars(select(ToolKey).where(ToolKey.institution_id == institution_id)
                                .order_by(ToolKey.id)).all()
    assert len(rows) == 5, [(row.kid, row.institution_id, row.purpose) for row in rows]
    return {row.kid: {name: getattr(row, name) for name in COLUMNS} for row in rows}


def _elsewhere(world: World) -> Institution:
    from lti_tool.store.institutions import find_institution

    found = find_institution(world.db, "elsewhere")
    if found is None:
        found = create_institution(world.db, InstitutionSpec(slug="elsewhere", name="Elsewhere",
                                                             country="DE"))
        world.db.commit()
    return found


def _apply(world: World, operation: str, kid: str, pool: dict[str, dict],
           elsewhere: Institution) -> None:
    """Change the key `kid` as an operator or another process might (unflushed unless the
    operation flushes or commits)."""
    db, now = world.db, utcnow()
    row = _row(world, kid)
    if operation == "flush":
        db.flush()
    elif operation == "commit":
        db.commit()
    elif operation == "restore":
        if row is None:  # under a new id: SQLite may have given the old one to a made key
            db.add(ToolKey(**_without_id(pool[kid])))
    elif row is None:
        return  # deleted: only a restore brings it back
    elif operation == "withdraw":
        row.active, row.publish_until = False, now - timedelta(seconds=1)
    elif operation == "publish_later":
        row.active, row.publish_until = False, now + timedelta(hours=1)
    elif operation == "publish_for_ever":
        row.publish_until = None
    elif operation in ("activate", "deactivate"):
        row.active = operation == "activate"
    elif operation == "swap_key":  # the row now stores another key of the same kind
        other = next(columns for other_kid, columns in pool.items()
                     if other_kid != kid and columns["purpose"] == row.purpose)
        row.public_jwk = {**other["public_jwk"], "kid": kid}
    elif operation == "move":
        row.institution_id = elsewhere.id
    elif operation == "move_back":
        row.institution_id = world.platform.institution_id
    elif operation == "delete":
        db.delete(row)
