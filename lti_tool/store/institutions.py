"""Institutions: the awarding bodies. Only operators (the CLI) create them.

An institution owns its registrations, its catalogue, its issuer profile (/issuers/<slug>)
and its badge signing keys. `resolve` gives the one an operator names with `--institution`,
or the only one there is when the name is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pycountry
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_tool.domain.errors import FieldProblem, ValidationFailed
from lti_tool.errors import BadRequest, Conflict, NotFound
from lti_tool.store.models.core import Institution

# Registrations made by open Dynamic Registration wait here, pending, until an operator
# approves them into a real institution. The slug cannot be chosen (it fails SLUG), the row
# has no issuer profile, no keys and no catalogue, and it is never "the only institution".
PENDING_SLUG = "-pending"

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


@dataclass(frozen=True)
class InstitutionSpec:
    slug: str
    name: str
    country: str
    url: str = ""
    email: str = ""
    region: str | None = None
    legal_identifier: str | None = None

    def problems(self) -> list[FieldProblem]:
        found = []
        if not SLUG.match(self.slug or ""):
            found.append(FieldProblem("slug", "use 1-63 lower-case letters, digits and hyphens "
                                              "(not at the start or end)"))
        if not (self.name or "").strip() or len(self.name) > 255:
            found.append(FieldProblem("name", "give the institution's name (at most 255 "
                                              "characters)"))
        if pycountry.countries.get(alpha_2=(self.country or "").upper()) is None \
                or len(self.country or "") != 2:
            found.append(FieldProblem("country", f"{self.country!r} is not an ISO 3166-1 "
                                                 "alpha-2 country code (e.g. TR, DE)"))
        if self.url and not re.match(r"^https?://[^\s/]+", self.url):
            found.append(FieldProblem("url", "give an absolute http(s) URL"))
        if self.email and not EMAIL.match(self.email):
            found.append(FieldProblem("email", f"{self.email!r} is not an e-mail address"))
        return found


def create_institution(db: Session, spec: InstitutionSpec) -> Institution:
    """A new institution; bad fields are a ValidationFailed, a taken slug a 409."""
    problems = spec.problems()
    if problems:
        raise ValidationFailed(problems)
    if find_institution(db, spec.slug) is not None:
        raise Conflict(f"An institution with slug {spec.slug!r} already exists.")
    row = Institution(slug=spec.slug, name=spec.name.strip(), country=spec.country.upper(),
                      url=spec.url, email=spec.email, region=spec.region or None,
                      legal_identifier=spec.legal_identifier or None)
    db.add(row)
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError as exc:
        raise Conflict(f"An institution with slug {spec.slug!r} already exists.") from exc
    return row


def is_reserved(row: Institution) -> bool:
    return row.slug == PENDING_SLUG


def pending_institution(db: Session) -> Institution:
    """Where pending registrations wait (made on first use)."""
    row = db.scalar(select(Institution).where(Institution.slug == PENDING_SLUG))
    if row is None:
        row = Institution(slug=PENDING_SLUG, name="Registrations awaiting approval",
                          country="ZZ")
        db.add(row)
        db.flush()
    return row


def find_institution(db: Session, slug: str) -> Institution | None:
    """A real institution by slug (never the reserved one that holds pending registrations)."""
    if slug == PENDING_SLUG:
        return None
    return db.scalar(select(Institution).where(Institution.slug == slug))


def list_institutions(db: Session) -> list[Institution]:
    return list(db.scalars(select(Institution).where(Institution.slug != PENDING_SLUG)
                           .order_by(Institution.id)))


def get_institution(db: Session, institution_id: int) -> Institution:
    row = db.get(Institution, institution_id)
    if row is None:
        raise NotFound(f"No institution with id {institution_id}.")
    return row


def resolve(db: Session, slug: str | None) -> Institution:
    """The institution named by `slug`, or the only one when `slug` is None."""
    if slug:
        row = find_institution(db, slug)
        if row is None:
            raise NotFound(f"No institution with slug {slug!r} (see `lti-tool institution "
                           "list`).")
        return row
    rows = list(db.scalars(select(Institution).where(Institution.slug != PENDING_SLUG)
                           .order_by(Institution.id).limit(2)))
    if not rows:
        raise BadRequest("There is no institution yet: create one with `lti-tool institution "
                         "add --slug SLUG --name NAME --country CC`.")
    if len(rows) > 1:
        raise BadRequest("There are several institutions: name one with --institution SLUG.")
    return rows[0]


def institution_summary(row: Institution) -> dict:
    return {"id": row.id, "slug": row.slug, "name": row.name, "country": row.country,
            "region": row.region, "url": row.url, "email": row.email,
            "legal_identifier": row.legal_identifier,
            "created_at": row.created_at.isoformat() if row.created_at else None}
