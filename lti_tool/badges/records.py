"""Reading issued credentials back: lookups, listing for the Office and CLI, page summaries."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from lti_tool.badges import baking, images
from lti_tool.badges.issuance import credential_url
from lti_tool.errors import NotFound
from lti_tool.settings import Settings
from lti_tool.store.models.badges import Credential
from lti_tool.store.models.catalogue import MicroCredential, MicroCredentialVersion, Offering
from lti_tool.store.models.core import Context, Person


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
    # The overall result (`#overall`) is no outcome: the page states it with the EU elements.
    outcomes = [{"name": d["name"], "level": results.get(d["id"], ""),
                 "required": levels.get(d.get("requiredLevel", ""), "")}
                for d in achievement.get("resultDescription", [])
                if not d["id"].endswith("#overall")]
    return {"document": document, "recipient": names[0] if names else "",
            "achievement": achievement, "issuer": document["issuer"],
            "outcomes": outcomes, "valid_from": document["validFrom"],
            "valid_until": document.get("validUntil")}


def credential_face(db: Session, row: Credential) -> images.BadgeFace:
    """The face of an issued credential: its own title and issuer name, the plan's EQF level
    and language (the image says what the credential says, in the plan's language)."""
    document = json.loads(row.document)
    version = db.get(MicroCredentialVersion, row.mc_version_id)
    issuer = document.get("issuer", {})
    return images.BadgeFace(
        seed=str(row.mc_version_id),
        title=str(document["credentialSubject"]["achievement"].get("name")
                  or document.get("name", "")),
        eqf_level=version.eqf_level if version is not None else None,
        issuer=str(issuer.get("name", "")) if isinstance(issuer, dict) else "",
        language=version.language if version is not None else "en")


def baked(db: Session, row: Credential, fmt: str, *, as_jwt: bool = False) -> bytes | str:
    """The badge image (`png` or `svg`) with the credential baked in: the JSON credential with
    its embedded proof, or with `as_jwt` the VC-JWT. The image is the credential's face."""
    text = row.jwt if as_jwt else row.document
    face = credential_face(db, row)
    if fmt == "png":
        return baking.bake_png(images.badge_png(face), text)
    return baking.bake_svg(images.badge_svg(face), text, is_jwt=as_jwt)


@dataclass(frozen=True)
class OfferingCredentials:
    """An offering with active credentials, for the Office's bulk Europass export."""

    offering_id: int
    code: str
    version: int
    course: str
    count: int


def offerings_with_credentials(db: Session, platform_id: int | None
                               ) -> list[OfferingCredentials]:
    if platform_id is None:
        return []
    query = (select(Offering.id, MicroCredential.code, MicroCredentialVersion.version,
                    Context.title, Context.label, func.count(Credential.id))
             .join(Credential, Credential.offering_id == Offering.id)
             .join(MicroCredentialVersion, MicroCredentialVersion.id == Offering.mc_version_id)
             .join(MicroCredential,
                   MicroCredential.id == MicroCredentialVersion.micro_credential_id)
             .join(Context, Context.id == Offering.context_id)
             .where(Offering.platform_id == platform_id, Credential.status == "active",
                    Credential.document != "")
             .group_by(Offering.id, MicroCredential.code, MicroCredentialVersion.version,
                       Context.title, Context.label)
             .order_by(MicroCredential.code, Offering.id))
    return [OfferingCredentials(offering_id=oid, code=code, version=version,
                                course=title or label or "", count=count)
            for oid, code, version, title, label, count in db.execute(query)]
