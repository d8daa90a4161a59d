"""Upsert the person, course context, resource link and membership a launch describes.

Rows are created with INSERT ... ON CONFLICT DO NOTHING on their unique keys and then read
back and updated, so two first launches of the same course racing in two worker processes
both succeed instead of one failing on the unique constraint. A repeat launch (the usual case)
finds all four rows with one joined query first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, bindparam, false, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lti_tool.launch import claims as c
from lti_tool.launch.validation import VerifiedLaunch
from lti_tool.store.db import RowT
from lti_tool.store.models.core import Context, Deployment, Membership, Person, ResourceLink


@dataclass(frozen=True)
class LaunchRecord:
    person: Person
    context: Context
    resource_link: ResourceLink | None
    membership: Membership


@dataclass(frozen=True)
class _Found:
    """The rows a launch's joined read found (any may be missing on a first launch)."""

    person: Person | None = None
    context: Context | None = None
    resource_link: ResourceLink | None = None
    membership: Membership | None = None


def _existing_rows_query(with_link: bool) -> Select:
    link_match = (ResourceLink.resource_link_id == bindparam("link_id")) if with_link else false()
    return (
        select(Person, Context, ResourceLink, Membership)
        .select_from(Person)
        .join(Context, and_(Context.platform_id == Person.platform_id,
                            Context.context_id == bindparam("context_id")))
        .outerjoin(ResourceLink, and_(ResourceLink.context_id == Context.id, link_match))
        .outerjoin(Membership, and_(Membership.context_id == Context.id,
                                    Membership.person_id == Person.id))
        .where(Person.platform_id == bindparam("platform_id"), Person.sub == bindparam("sub")))


# Built once (every launch runs one): a resource-link launch's, and a deep-linking launch's.
_EXISTING = {True: _existing_rows_query(True), False: _existing_rows_query(False)}


def _find_existing(db: Session, launch: VerifiedLaunch) -> _Found:
    """Person, context, resource link and membership of the launch in one query; nothing when
    the person or the context is new."""
    with_link = launch.message_type == c.RESOURCE_LINK_REQUEST
    params = {"platform_id": launch.platform.id, "sub": launch.sub,
              "context_id": launch.obj(c.CONTEXT)["id"]}
    if with_link:
        params["link_id"] = launch.obj(c.RESOURCE_LINK)["id"]
    row = db.execute(_EXISTING[with_link], params).first()
    if row is None:
        return _Found()
    return _Found(person=row[0], context=row[1], resource_link=row[2], membership=row[3])


def _ensure(db: Session, model: type[RowT], keys: dict[str, Any], defaults: dict[str, Any],
            found: RowT | None = None) -> RowT:
    """The row of `model` with unique `keys` (`found` when the joined read had it), inserted
    (race-free) when missing.

    Read first: on a repeat launch (the usual case) the row exists, and one SELECT replaces
    an INSERT … ON CONFLICT DO NOTHING (a write lock on SQLite) plus the SELECT."""
    if found is not None:
        return found
    query = select(model).filter_by(**keys)
    found = db.scalars(query).one_or_none()
    if found is not None:
        return found
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    if dialect not in ("postgresql", "sqlite"):
        raise RuntimeError(f"unsupported database dialect {dialect}")
    db.execute(insert(model).values(**keys, **defaults).on_conflict_do_nothing(
        index_elements=list(keys)))
    return db.scalars(query.execution_options(populate_existing=True)).one()


def _text(value: object, limit: int) -> str:
    """A display string cut to its column's width (names and titles are informative only)."""
    return value[:limit] if isinstance(value, str) else ""


def _sourcedid(lis: dict) -> str | None:
    """Canvas sends `$Person.sourcedId` unexpanded when it cannot fill it: that is no id."""
    value = lis.get("person_sourcedid")
    if isinstance(value, str) and value and not value.startswith("$"):
        return value[:255]
    return None


def launch_locale(launch: VerifiedLaunch) -> str | None:
    value = launch.obj(c.LAUNCH_PRESENTATION).get("locale") or launch.get("locale")
    return value[:20] if isinstance(value, str) and value else None


def _update(row: object, values: dict[str, Any]) -> None:
    """Set what differs only: a repeat launch that changes nothing leaves its rows clean, and
    the flush has nothing to compare or write."""
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)


def upsert_person(db: Session, launch: VerifiedLaunch, role: str,
                  found: Person | None = None) -> Person:
    person = _ensure(db, Person, {"platform_id": launch.platform.id, "sub": launch.sub}, {},
                     found)
    values: dict[str, Any] = {}
    for field, limit in (("name", 500), ("given_name", 255), ("family_name", 255)):
        if isinstance(launch.get(field), str):
            values[field] = _text(launch.get(field), limit)
    email = launch.get("email")
    if isinstance(email, str) and email:
        values["email"] = email[:500]
    sourcedid = _sourcedid(launch.obj(c.LIS))
    if sourcedid:
        values["lis_person_sourcedid"] = sourcedid
    values["locale"] = launch_locale(launch) or person.locale
    values["is_admin"] = role == "admin"
    _update(person, values)
    return person


def upsert_context(db: Session, launch: VerifiedLaunch, deployment: Deployment,
                   found: Context | None = None) -> Context:
    claim = launch.obj(c.CONTEXT)
    context = _ensure(db, Context, {"platform_id": launch.platform.id,
                                    "context_id": claim["id"]}, {}, found)
    values: dict[str, Any] = {
        "deployment_id": deployment.id,
        "title": _text(claim.get("title"), 500) or context.title,
        "label": _text(claim.get("label"), 255) or context.label}
    ags = launch.obj(c.AGS_ENDPOINT)
    if ags:
        values.update(ags_lineitems_url=ags.get("lineitems"),
                      ags_lineitem_url=ags.get("lineitem") or context.ags_lineitem_url,
                      ags_scopes=list(ags.get("scope") or []))
    nrps = launch.obj(c.NRPS)
    if nrps:
        versions = nrps.get("service_versions")
        values.update(nrps_url=nrps.get("context_memberships_url"),
                      nrps_versions=[v for v in versions if isinstance(v, str)]
                      if isinstance(versions, list) else [])
    _update(context, values)
    return context


def upsert_resource_link(db: Session, launch: VerifiedLaunch, context: Context,
                         found: ResourceLink | None = None) -> ResourceLink:
    claim = launch.obj(c.RESOURCE_LINK)
    link = _ensure(db, ResourceLink, {"context_id": context.id,
                                      "resource_link_id": claim["id"]}, {}, found)
    _update(link, {
        "title": _text(claim.get("title"), 500) or link.title,
        "custom": dict(launch.obj(c.CUSTOM)),
        "ags_lineitem_url": launch.obj(c.AGS_ENDPOINT).get("lineitem") or link.ags_lineitem_url})
    return link


def upsert_membership(db: Session, launch: VerifiedLaunch, context: Context, person: Person,
                      role: str, found: Membership | None = None) -> Membership:
    membership = _ensure(db, Membership, {"context_id": context.id, "person_id": person.id},
                         {"role": role}, found)
    _update(membership, {"role": role, "lis_roles": launch.roles, "active": True,
                         "source": "launch"})
    return membership


def record_launch(db: Session, launch: VerifiedLaunch, deployment: Deployment,
                  role: str) -> LaunchRecord:
    """Upsert everything the launch says about who is where; flushes, never commits."""
    found = _find_existing(db, launch)
    person = upsert_person(db, launch, role, found.person)
    context = upsert_context(db, launch, deployment, found.context)
    link = (upsert_resource_link(db, launch, context, found.resource_link)
            if launch.message_type == c.RESOURCE_LINK_REQUEST else None)
    membership = upsert_membership(db, launch, context, person, role, found.membership)
    db.flush()
    return LaunchRecord(person=person, context=context, resource_link=link,
                        membership=membership)
