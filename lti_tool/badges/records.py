"""Reading issued credentials back: lookups, listing for the Office and CLI, page summaries."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lti_tool.badges.issuance import credential_url
from lti_tool.errors import NotFound
from lti_tool.settings import Settings
from lti_tool.store.models.badges import Credential
from lti_tool.store.models.catalogue import MicroCredential, MicroCredentialVersion
from lti_tool.store.models.core import Person


def by_public_id(db: Session, public_id: str, platform_id: int | None = None) -> Credential:
    """The credential with this public id (within one platform when given), else 404."""
    if len(public_id) > 36:
        raise NotFound("There is no such credential.")
    query = select(Credential).where(Credential.public_id == public_id,
                                     Credential.document != "")
    if platform_id is not None:
        query = query.where(Credential.platform_id == platform_id)
    row = db.scalar(query)
    if row is None:
        raise NotFound("There is no such credential.")
    return row


@dataclass(frozen=True)
class Listed:
    """One line of the Office's and the CLI's list."""

    credential: Credential
    learner: str
    code: str
    title: str

    def as_dict(self, settings: Settings) -> dict:
        url = credential_url(settings, self.credential.public_id)
        return {"id": self.credential.public_id, "learner": self.learner,
                "micro_credential": self.code, "title": self.title,
                "status": self.credential.status,
                "issued_at": self.credential.issued_at.isoformat(),
                "revoked_reason": self.credential.revoked_reason or None,
                "urls": {"page": url, "json": url + ".json", "jwt": url + ".jwt",
                         "png": url + ".png", "svg": url + ".svg"}}


def listing(db: Session, *, platform_id: int | None = None, search: str = "",
            status: str = "", limit: int = 200) -> list[Listed]:
    """Issued credentials, newest first, optionally searched by learner, code, title or id."""
    query = (select(Credential, Person.name, Person.email, MicroCredential.code,
                    MicroCredentialVersion.title)
             .join(Person, Person.id == Credential.person_id)
             .join(MicroCredentialVersion, MicroCredentialVersion.id == Credential.mc_version_id)
             .join(MicroCredential,
                   MicroCredential.id == MicroCredentialVersion.micro_credential_id)
             .where(Credential.document != "")
             .order_by(Credential.issued_at.desc(), Credential.id.desc()).limit(limit))
    if platform_id is not None:
        query = query.where(Credential.platform_id == platform_id)
    if status:
        query = query.where(Credential.status == status)
    if search.strip():
        like = f"%{search.strip().lower()}%"
        query = query.where(or_(*(column.ilike(like) for column in (
            Person.name, Person.email, MicroCredential.code, MicroCredentialVersion.title,
            Credential.public_id))))
    return [Listed(credential=row, learner=name or email or "", code=code, title=title)
            for row, name, email, code, title in db.execute(query)]


def summary(credential: Credential) -> dict:
    """What the public page says, read from the signed document itself (what others see)."""
    document = json.loads(credential.document)
    subject = document["credentialSubject"]
    achievement = subject["achievement"]
    names = [i["identityHash"] for i in subject.get("identifier", [])
             if i.get("identityType") == "name" and not i.get("hashed")]
    levels = {}
    for description in achievement.get("resultDescription", []):
        for level in description.get("rubricCriterionLevel", []):
            levels[level["id"]] = level["name"]
    results = {r["resultDescription"]: levels.get(r.get("achievedLevel", ""), "")
               for r in subject.get("result", [])}
    outcomes = [{"name": d["name"], "level": results.get(d["id"], ""),
                 "required": levels.get(d.get("requiredLevel", ""), "")}
                for d in achievement.get("resultDescription", [])]
    return {"document": document, "recipient": names[0] if names else "",
            "achievement": achievement, "issuer": document["issuer"],
            "outcomes": outcomes, "valid_from": document["validFrom"],
            "valid_until": document.get("validUntil")}
