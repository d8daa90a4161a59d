"""Status lists in the store: index allocation, the signed list credential, revocation."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

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


def _newest_list(db: Session, institution_id: int):
    """The institution's newest revocation list with the number of indexes it has given out
    (id, public_id, size, used), in one statement; None if it has none."""
    used = (select(func.count()).select_from(Credential)
            .where(Credential.status_list_id == StatusList.id).scalar_subquery())
    return db.execute(
        select(StatusList.id, StatusList.public_id, StatusList.size, used.label("used"))
        .where(StatusList.purpose == "revocation", StatusList.institution_id == institution_id)
        .order_by(StatusList.id.desc()).limit(1)).first()


def _new_list(db: Session, settings: Settings, signer: Signer) -> StatusList:
    row = StatusList(public_id=secrets.token_hex(8), purpose="revocation",
                     institution_id=signer.institution.id,
                     size=statuslist.LIST_SIZE, bits=statuslist.empty_bits())
    db.add(row)
    db.flush()
    sign_list(db, settings, row, signer)
    return row


def open_list(db: Session, settings: Settings, signer: Signer) -> StatusList:
    """The list the signer's institution puts new credentials in: its newest one below the
    fill limit, else a new one."""
    newest = _newest_list(db, signer.institution.id)
    if newest is not None and newest.used < statuslist.FILL_LIMIT:
        row = db.get(StatusList, newest.id)
        if row is not None:
            return row
    return _new_list(db, settings, signer)


@dataclass(frozen=True)
class ListSlot:
    """What issuance needs of the open list: its id, public id (the URL) and size."""

    id: int
    public_id: str
    size: int


@dataclass
class _Cached:
    slot: ListSlot
    uses_left: int


# The open list of each (database, institution), so issuance does not count a list's
# credentials each time. Recounted after RECOUNT_EVERY issuances of this process, so the fill
# limit (a soft one: it only keeps random draws cheap) is passed by at most that many per
# process. The slot may be stale (another database under the same URL, a list made in a
# transaction that rolled back): issuance inserts its credential only if the list's id and
# public id still match, and calls `forget_list` otherwise.
RECOUNT_EVERY = 256
_OPEN: dict[tuple[str, int], _Cached] = {}


def _cache_key(db: Session, institution_id: int) -> tuple[str, int]:
    return (str(db.get_bind().engine.url), institution_id)


def current_list(db: Session, settings: Settings, signer: Signer) -> ListSlot:
    """The slot of the list the signer's institution puts new credentials in (cached)."""
    key = _cache_key(db, signer.institution.id)
    cached = _OPEN.get(key)
    if cached is not None and cached.uses_left > 0:
        cached.uses_left -= 1
        return cached.slot
    newest = _newest_list(db, signer.institution.id)
    if newest is not None and newest.used < statuslist.FILL_LIMIT:
        slot = ListSlot(id=newest.id, public_id=newest.public_id, size=newest.size)
        left = min(RECOUNT_EVERY, statuslist.FILL_LIMIT - newest.used)
    else:  # signed with the keys active now (`signer` may be Signer.cached)
        row = _new_list(db, settings, Signer.load(db, settings, signer.institution))
        slot = ListSlot(id=row.id, public_id=row.public_id, size=row.size)
        left = RECOUNT_EVERY
    _OPEN[key] = _Cached(slot=slot, uses_left=left - 1)
    return slot


def forget_list(db: Session, institution_id: int) -> None:
    """Drop the cached slot (stale, or its drawn index was taken): the next call recounts."""
    _OPEN.pop(_cache_key(db, institution_id), None)


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
