"""Automatic issuance: one credential per learner and micro-credential version, ever.

The evaluation calls `issue_on_pass` in the transaction that records the pass. The credential
is built once, signed with both proofs, and inserted with its random status index in one
statement (INSERT ... ON CONFLICT DO NOTHING RETURNING, no savepoint): under concurrency the
unique constraint on (person_id, mc_version_id) picks exactly one winner and losers get the
winner's row (they have signed for nothing: only a race or a repeated pass costs that); a
taken index is drawn again. Per issuance that is one statement, the insert: the active key
rows are cached per process (signing.Signer.cached; parsed keys by kid and key version,
signing.parsed_key) and the insert stores nothing unless they are still the institution's
active keys, unchanged (signing.still_active), so a rotation, in any process, takes effect at
the next issuance: it reads the keys again and signs again. The insert also checks that the
learner's registration belongs to the awarding institution and returns whether an issuing
pathway requires the micro-credential (only then are pathways checked). The open status list
is cached per process and recounted now and then (status.current_list).

A pass on a micro-credential that is not `approved` is held and issued by `issue_held` once the
Office revalidates it; so is a pass on an approved version whose (migrated) Design Plan lacks a
mandatory EU micro-credential element, until the Office completes it: a credential never states
a placeholder. Each issuance then checks the pathways it completes.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from lti_tool.badges import builder, statuslist
from lti_tool.badges.facts import achievement_facts, recipient_facts
from lti_tool.badges.signing import Signer, forget_active, still_active
from lti_tool.badges.status import ListSlot, current_list, forget_list, list_url
from lti_tool.catalogue.service import annex_gaps_of
from lti_tool.domain import catalogue as rules
from lti_tool.errors import Forbidden, NotFound
from lti_tool.settings import Settings
from lti_tool.store.db import utcnow
from lti_tool.store.models.badges import Credential, HeldPass, StatusList
from lti_tool.store.models.catalogue import MicroCredentialVersion, PathwayComponent
from lti_tool.store.models.core import Institution, Person, Platform

log = logging.getLogger(__name__)
INDEX_ATTEMPTS = 20


def credential_url(settings: Settings, public_id: str) -> str:
    return settings.url(f"/credentials/{public_id}")


def default_image(settings: Settings, version_id: int) -> str:
    return settings.url(f"/achievements/{version_id}/image.png")


def find_credential(db: Session, person_id: int, mc_version_id: int) -> Credential | None:
    return db.scalar(select(Credential).where(Credential.person_id == person_id,
                                              Credential.mc_version_id == mc_version_id))


def _validity(settings: Settings, issued_at: datetime) -> datetime | None:
    """`validUntil` when the installation sets `credential_validity_days`; none by default."""
    days = settings.credential_validity_days
    return issued_at + timedelta(days=int(days)) if days else None


def _hold(db: Session, version: MicroCredentialVersion, *, person_id: int,
          offering_id: int | None, outcome_levels: dict[str, str], passed_at: datetime) -> None:
    try:
        with db.begin_nested():
            db.add(HeldPass(platform_id=db.get(Person, person_id).platform_id,
                            person_id=person_id,
                            mc_version_id=version.id, offering_id=offering_id,
                            outcome_levels=dict(outcome_levels), passed_at=passed_at))
    except IntegrityError:
        pass  # already held: the first pass recorded stands
    log.info("pass held: person %s, MC version %s is %s", person_id, version.id, version.status)


def _learner_platform(db: Session, person_id: int, version: MicroCredentialVersion) -> int:
    """The learner's registration, which must belong to the institution that awards the MC:
    no registration gets another institution's credential."""
    person = db.get(Person, person_id)
    platform = db.get(Platform, person.platform_id) if person is not None else None
    if platform is None or platform.institution_id != version.institution_id:
        raise Forbidden("The learner's registration does not belong to the institution that "
                        "awards this micro-credential.")
    return platform.id


_INSERTED = ("public_id", "platform_id", "person_id", "mc_version_id", "offering_id",
             "via_pathway", "status", "passed_at", "issued_at", "valid_until", "outcome_levels",
             "status_index", "document", "jwt", "revoked_at", "revoked_reason",
             "revoked_by_person_id")
_INSERTS: dict[str, Any] = {}


ISSUING_PATHWAY_STATUSES = ("approved", "lapsed")


def _pathways_requiring(micro_credential):
    """The condition: a pathway version that may issue requires `micro_credential` (a bind)."""
    return and_(PathwayComponent.version_id == MicroCredentialVersion.id,
                PathwayComponent.required_micro_credential_id == micro_credential,
                MicroCredentialVersion.status.in_(ISSUING_PATHWAY_STATUSES))


# The ids of the issuing pathway versions that require a micro-credential (built once).
_PATHWAYS_REQUIRING = (
    select(MicroCredentialVersion.id).where(_pathways_requiring(bindparam("mc")))
    .distinct().order_by(MicroCredentialVersion.id))


# Whether an issuing pathway requires the micro-credential, as the insert's RETURNING says it.
# RETURNING names columns without their table, so the subquery avoids names the credential
# table also has at its own level (`id`, `status` appear only in the innermost SELECT, which
# SQL resolves first).
_ANY_PATHWAY = exists().where(
    PathwayComponent.required_micro_credential_id == bindparam("micro_credential_id"),
    PathwayComponent.version_id.in_(
        select(MicroCredentialVersion.id)
        .where(or_(*[MicroCredentialVersion.status == status
                     for status in ISSUING_PATHWAY_STATUSES]))))


def _insert_statement(dialect_name: str):
    """INSERT INTO credential (...) SELECT :values..., list.id FROM badge_status_list WHERE
    it is the cached list AND EXISTS (the learner's platform, of the awarding institution)
    AND the cached keys that signed are still the active ones ON CONFLICT DO NOTHING
    RETURNING id, EXISTS (an issuing pathway requires the credential's micro-credential);
    built once per dialect (building it costs more than running it)."""
    if dialect_name not in _INSERTS:
        columns = Credential.__table__.c
        source = select(*[bindparam(name, type_=columns[name].type) for name in _INSERTED],
                        StatusList.id).where(
            StatusList.id == bindparam("list_id"),
            StatusList.public_id == bindparam("list_public_id"),
            exists().where(Platform.id == bindparam("platform_id"),
                           Platform.institution_id == bindparam("institution_id")),
            still_active("ed"), still_active("jwt"))
        dialect = postgresql if dialect_name == "postgresql" else sqlite
        _INSERTS[dialect_name] = (
            dialect.insert(Credential.__table__)
            .from_select([*_INSERTED, "status_list_id"], source)
            .on_conflict_do_nothing().returning(columns.id, _ANY_PATHWAY))
    return _INSERTS[dialect_name]


def _insert(db: Session, signer: Signer, slot: ListSlot, version: MicroCredentialVersion,
            values: dict) -> tuple[Credential | None, bool]:
    """Insert the signed credential in one statement: (row, whether an issuing pathway requires
    its micro-credential); (None, False) when nothing was inserted: the learner already has
    one for this version or the drawn index is taken (ON CONFLICT DO NOTHING), the cached
    list slot or signing keys are stale, or the learner's registration is not the
    institution's."""
    params = {name: values[name] for name in _INSERTED}
    params.update(list_id=slot.id, list_public_id=slot.public_id,
                  institution_id=version.institution_id,
                  micro_credential_id=version.micro_credential_id, **signer.key_binds())
    inserted = db.execute(_insert_statement(db.get_bind().dialect.name), params).first()
    if inserted is None:
        return None, False
    new_id, pathways = inserted
    # The row as inserted, every column given, made persistent in the session without a query
    row = Credential(id=new_id, status_list_id=slot.id,
                     **{name: values[name] for name in _INSERTED})
    make_transient_to_detached(row)
    db.add(row)
    return row, bool(pathways)


def _issue(db: Session, settings: Settings, signer: Signer, version: MicroCredentialVersion,
           person: Person, *, offering_id: int | None,
           outcome_levels: dict[str, str], passed_at: datetime, via_pathway: bool,
           issued_at: datetime | None) -> tuple[Credential, bool, bool]:
    """Build and sign the credential once for both proofs, then insert it with its status
    index in one statement; (row, True, whether a pathway may follow) if we won, (the
    winner's row, False, False) if another transaction issued it first."""
    issued_at = issued_at or utcnow()
    valid_until = _validity(settings, issued_at)
    public_id = str(uuid.uuid4())
    facts = achievement_facts(db, version)
    recipient = recipient_facts(person)
    subject_id, salt = f"urn:uuid:{uuid.uuid4()}", secrets.token_hex(8)
    for _attempt in range(INDEX_ATTEMPTS):
        slot = current_list(db, settings, signer)
        index = statuslist.random_index(slot.size)
        award = builder.AwardFacts(
            credential_id=credential_url(settings, public_id), subject_id=subject_id,
            issued_at=issued_at, passed_at=passed_at, valid_until=valid_until,
            outcome_levels=outcome_levels, salt=salt,
            status_entry=statuslist.entry(list_url(settings, slot.public_id), index),
            via_pathway=via_pathway)
        unsigned = builder.credential(facts, signer.issuer, recipient, award,
                                      settings.base_url, default_image(settings, version.id))
        signed = signer.data_integrity(unsigned, issued_at)
        row, pathways = _insert(db, signer, slot, version, {
            "public_id": public_id, "platform_id": person.platform_id, "person_id": person.id,
            "mc_version_id": version.id, "offering_id": offering_id,
            "via_pathway": via_pathway, "status": "active", "passed_at": passed_at,
            "issued_at": issued_at, "valid_until": valid_until,
            "outcome_levels": dict(outcome_levels),
            "status_index": index, "document": json.dumps(signed, ensure_ascii=False),
            "jwt": signer.jwt(signed), "revoked_at": None, "revoked_reason": "",
            "revoked_by_person_id": None})
        if row is not None:
            return row, True, pathways
        existing = find_credential(db, person.id, version.id)
        if existing is not None:
            return existing, False, False
        _learner_platform(db, person.id, version)  # Forbidden if the registration is not ours
        # the random index was taken, or the cached list or keys are stale: recount, read the
        # keys again and draw again
        forget_list(db, signer.institution.id)
        forget_active(db, signer.institution.id)
        signer = Signer.cached(db, settings, signer.institution)
    raise RuntimeError("could not allocate a status list index")


def issue_on_pass(db: Session, settings: Settings, *, person_id: int, mc_version_id: int,
                  offering_id: int | None, outcome_levels: dict[str, str],
                  passed_at: datetime, via_pathway: bool = False,
                  issued_at: datetime | None = None) -> Credential | None:
    """Issue the learner's credential for a passed MC version (idempotent, concurrency-safe).

    `issued_at` dates the credential (and its signature); default now. Only the demo's seeded
    past year gives one.

    Returns the credential (new or already issued), or None when the version is not approved
    and the pass was held instead.
    """
    version = db.get(MicroCredentialVersion, mc_version_id)
    if version is None:
        raise NotFound(f"no micro-credential version {mc_version_id}")
    if version.status not in rules.ISSUING_STATUSES or annex_gaps_of(version):
        existing = find_credential(db, person_id, mc_version_id)
        if existing is not None:
            return existing
        _hold(db, version, person_id=person_id, offering_id=offering_id,
              outcome_levels=outcome_levels, passed_at=passed_at)
        return None
    person = db.get(Person, person_id)
    if person is None:
        _learner_platform(db, person_id, version)  # raises Forbidden, as for a foreign one
        raise NotFound(f"no person {person_id}")
    signer = Signer.cached(db, settings, db.get(Institution, version.institution_id))
    # The insert itself checks that the learner's registration belongs to the awarding
    # institution; when it inserts nothing, _issue tells a race, a taken index and that apart.
    row, won, pathways = _issue(db, settings, signer, version, person, offering_id=offering_id,
                      outcome_levels=outcome_levels, passed_at=passed_at,
                      via_pathway=via_pathway, issued_at=issued_at)
    if won and pathways:  # the insert said whether any issuing pathway requires this MC
        issue_completed_pathways(db, settings, person_id=person_id,
                                 micro_credential_id=version.micro_credential_id)
    return row


def issue_held(db: Session, settings: Settings, mc_version_id: int) -> list[Credential]:
    """Issue every pass held for a version that is approved again (after revalidation)."""
    version = db.get(MicroCredentialVersion, mc_version_id)
    if version is None:
        raise NotFound(f"no micro-credential version {mc_version_id}")
    if version.status not in rules.ISSUING_STATUSES or annex_gaps_of(version):
        return []
    issued = []
    held = db.scalars(select(HeldPass).where(HeldPass.mc_version_id == mc_version_id,
                                             HeldPass.released_at.is_(None))).all()
    for item in held:
        credential = issue_on_pass(db, settings, person_id=item.person_id,
                                   mc_version_id=mc_version_id, offering_id=item.offering_id,
                                   outcome_levels=item.outcome_levels, passed_at=item.passed_at)
        item.released_at = utcnow()
        if credential is not None:
            issued.append(credential)
    db.flush()
    return issued


def _held_micro_credentials(db: Session, person_id: int) -> set[int]:
    return set(db.scalars(
        select(MicroCredentialVersion.micro_credential_id)
        .join(Credential, Credential.mc_version_id == MicroCredentialVersion.id)
        .where(Credential.person_id == person_id, Credential.status == "active")))


def issue_completed_pathways(db: Session, settings: Settings, *, person_id: int,
                             micro_credential_id: int) -> list[Credential]:
    """Issue each pathway that requires `micro_credential_id` and whose components are all held.

    A pathway version that is not approved holds the pass like any other.
    """
    candidate_ids = db.scalars(_PATHWAYS_REQUIRING, {"mc": micro_credential_id}).all()
    if not candidate_ids:
        return []  # the usual case: one light query (ids only)
    candidates = [db.get(MicroCredentialVersion, version_id) for version_id in candidate_ids]
    issued = []
    for pathway in candidates:
        if pathway is None:
            continue
        required = {component.required_micro_credential_id for component in pathway.components}
        if not rules.is_pathway_complete(required, _held_micro_credentials(db, person_id)):
            continue
        credential = issue_on_pass(db, settings, person_id=person_id, mc_version_id=pathway.id,
                                   offering_id=None, outcome_levels={}, passed_at=utcnow(),
                                   via_pathway=True)
        if credential is not None:
            issued.append(credential)
    return issued
