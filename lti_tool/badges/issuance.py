"""Automatic issuance: one credential per learner and micro-credential version, ever.

The evaluation calls `issue_on_pass` in the transaction that records the pass. The row is
inserted first inside a savepoint, so under concurrency the unique constraint on
(person_id, mc_version_id) picks exactly one winner before anyone spends time signing; losers
get the winner's row. A pass on a micro-credential that is not `approved` is held and issued by
`issue_held` once the Office revalidates it; so is a pass on an approved version whose (migrated)
Design Plan lacks a mandatory EU micro-credential element, until the Office completes it: a
credential never states a placeholder. Each issuance then checks the pathways it completes.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_tool.badges import builder, statuslist
from lti_tool.badges.facts import achievement_facts, recipient_facts
from lti_tool.badges.signing import Signer
from lti_tool.badges.status import list_url, open_list
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


def _claim(db: Session, settings: Settings, signer: Signer, version: MicroCredentialVersion, *,
           person_id: int, offering_id: int | None, outcome_levels: dict[str, str],
           passed_at: datetime, via_pathway: bool, issued_at: datetime | None = None
           ) -> tuple[Credential, bool]:
    """Insert the credential row (unsigned yet); (row, True) if we won, (winner, False) if not."""
    status_list = open_list(db, settings, signer)
    platform_id = _learner_platform(db, person_id, version)
    for _attempt in range(INDEX_ATTEMPTS):
        row = Credential(public_id=str(uuid.uuid4()), platform_id=platform_id,
                         person_id=person_id, mc_version_id=version.id, offering_id=offering_id,
                         via_pathway=via_pathway, status="active", passed_at=passed_at,
                         issued_at=issued_at or utcnow(), outcome_levels=dict(outcome_levels),
                         status_list_id=status_list.id,
                         status_index=statuslist.random_index(status_list.size))
        try:
            with db.begin_nested():
                db.add(row)
        except IntegrityError:
            existing = find_credential(db, person_id, version.id)
            if existing is not None:
                return existing, False
            continue  # the random index was taken: draw again
        return row, True
    raise RuntimeError("could not allocate a status list index")


def _sign(db: Session, settings: Settings, signer: Signer, row: Credential,
          version: MicroCredentialVersion) -> None:
    person = db.get(Person, row.person_id)
    if person is None:
        raise NotFound(f"no person {row.person_id}")
    row.valid_until = _validity(settings, row.issued_at)
    facts = achievement_facts(db, version)
    status_list = db.get(StatusList, row.status_list_id)
    award = builder.AwardFacts(
        credential_id=credential_url(settings, row.public_id),
        subject_id=f"urn:uuid:{uuid.uuid4()}",
        issued_at=row.issued_at, passed_at=row.passed_at, valid_until=row.valid_until,
        outcome_levels=row.outcome_levels, salt=secrets.token_hex(8),
        status_entry=statuslist.entry(list_url(settings, status_list.public_id),
                                      row.status_index),
        via_pathway=row.via_pathway)
    unsigned = builder.credential(facts, signer.issuer, recipient_facts(person), award,
                                  settings.base_url, default_image(settings, version.id))
    signed = signer.data_integrity(unsigned, row.issued_at)
    row.document = json.dumps(signed, ensure_ascii=False)
    row.jwt = signer.jwt(signed)
    db.flush()


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
    existing = find_credential(db, person_id, mc_version_id)
    if existing is not None:
        return existing
    if version.status not in rules.ISSUING_STATUSES or annex_gaps_of(version):
        _hold(db, version, person_id=person_id, offering_id=offering_id,
              outcome_levels=outcome_levels, passed_at=passed_at)
        return None
    signer = Signer.load(db, settings, db.get(Institution, version.institution_id))
    row, won = _claim(db, settings, signer, version, person_id=person_id,
                      offering_id=offering_id, outcome_levels=outcome_levels,
                      passed_at=passed_at, via_pathway=via_pathway, issued_at=issued_at)
    if won:
        _sign(db, settings, signer, row, version)
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
    candidates = db.scalars(
        select(MicroCredentialVersion).join(
            PathwayComponent, PathwayComponent.version_id == MicroCredentialVersion.id)
        .where(PathwayComponent.required_micro_credential_id == micro_credential_id,
               MicroCredentialVersion.status.in_(("approved", "lapsed")))).unique().all()
    issued = []
    for pathway in candidates:
        required = {component.required_micro_credential_id for component in pathway.components}
        if not rules.is_pathway_complete(required, _held_micro_credentials(db, person_id)):
            continue
        credential = issue_on_pass(db, settings, person_id=person_id, mc_version_id=pathway.id,
                                   offering_id=None, outcome_levels={}, passed_at=utcnow(),
                                   via_pathway=True)
        if credential is not None:
            issued.append(credential)
    return issued
