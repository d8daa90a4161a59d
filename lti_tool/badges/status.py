"""Status lists in the store: index allocation, the signed list credential, revocation."""

from __future__ import annotations

import json
import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_tool.badges import statuslist
from lti_tool.badges.builder import iso
from lti_tool.badges.signing import Signer
from lti_tool.errors import BadRequest, Conflict, NotFound
from lti_tool.settings import Settings
from lti_tool.store.db import utcnow
from lti_tool.store.models.badges import Credential, StatusList
from lti_tool.store.models.core import AuditEntry, Institution


def list_url(settings: Settings, public_id: str) -> str:
    return settings.url(f"/status/{public_id}")


def sign_list(db: Session, settings: Settings, row: StatusList, signer: Signer) -> None:
    """(Re-)sign the list's BitstringStatusListCredential with its institution's active
    Ed25519 key."""
    if row.institution_id is not None and row.institution_id != signer.institution.id:
        raise ValueError("a status list is signed only by its own institution")
    now = utcnow()
    unsigned = statuslist.list_credential(
        list_url(settings, row.public_id), signer.issuer.id, row.bits, iso(now),
        row.purpose)
    row.signed_credential = json.dumps(signer.data_integrity(unsigned, now), ensure_ascii=False)
    row.updated_at = now


def open_list(db: Session, settings: Settings, signer: Signer) -> StatusList:
    """The list the signer's institution puts new credentials in: its newest one below the
    fill limit, else a new one."""
    row = db.scalar(select(StatusList).where(StatusList.purpose == "revocation",
                                             StatusList.institution_id == signer.institution.id)
                    .order_by(StatusList.id.desc()).limit(1))
    if row is not None:
        used = db.scalar(select(func.count()).select_from(Credential)
                         .where(Credential.status_list_id == row.id)) or 0
        if used < statuslist.FILL_LIMIT:
            return row
    row = StatusList(public_id=secrets.token_hex(8), purpose="revocation",
                     institution_id=signer.institution.id,
                     size=statuslist.LIST_SIZE, bits=statuslist.empty_bits())
    db.add(row)
    db.flush()
    sign_list(db, settings, row, signer)
    return row


def is_revoked(db: Session, list_public_id: str, index: int,
               institution_id: int | None = None) -> bool | None:
    """The bit at `index` of one of our lists (of `institution_id` when given); None when the
    list is not ours or not that institution's."""
    row = db.scalar(select(StatusList).where(StatusList.public_id == list_public_id[:40]))
    if row is None or (institution_id is not None and row.institution_id != institution_id):
        return None
    if not 0 <= index < row.size:
        return None
    return statuslist.get_bit(row.bits, index)


def revoke(db: Session, settings: Settings, credential: Credential, *, reason: str,
           actor_person_id: int | None, actor_label: str) -> Credential:
    """Revoke with a reason: flip the bit, re-sign the list, record who did it."""
    reason = reason.strip()
    if not reason:
        raise BadRequest("Give a reason for the revocation; it is recorded.")
    if credential.status == "revoked":
        raise Conflict("This credential is already revoked.")
    # Lock the list row: two revocations in one list must not lose each other's bit.
    row = db.scalar(select(StatusList).where(StatusList.id == credential.status_list_id)
                    .with_for_update().execution_options(populate_existing=True))
    if row is None:
        raise NotFound("The credential's status list is missing.")
    row.bits = statuslist.set_bit(row.bits, credential.status_index, True)
    institution = db.get(Institution, row.institution_id)
    if institution is None:
        raise NotFound("The credential's status list has no institution.")
    sign_list(db, settings, row, Signer.load(db, settings, institution))
    credential.status = "revoked"
    credential.revoked_at = utcnow()
    credential.revoked_reason = reason
    credential.revoked_by_person_id = actor_person_id
    db.add(AuditEntry(institution_id=row.institution_id, platform_id=credential.platform_id,
                      actor_person_id=actor_person_id,
                      actor_label=actor_label, action="credential.revoke",
                      target=credential.public_id, details={"reason": reason}))
    db.flush()
    return credential
