"""Platform registrations and deployments: found by (issuer, client_id), never by issuer.

The registration service (register, update, remove, deployments) is shared by the CLI, the
Office's admin page, example files in `config/platforms/` and Dynamic Registration, so every
entry point applies the same validation and gives the same clear messages.
"""

from __future__ import annotations

import ipaddress
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

from sqlalchemy import and_, bindparam, delete, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_tool.errors import BadRequest, Conflict, LaunchError, NotFound
from lti_tool.outbound import parse_host_entry, token_endpoint_key
from lti_tool.store import institutions
from lti_tool.store.db import utcnow
from lti_tool.store.models.badges import Credential
from lti_tool.store.models.core import (
    LMS_KINDS,
    PLATFORM_STATUSES,
    AuditEntry,
    Context,
    Deployment,
    Person,
    Platform,
    RegistrationInvite,
    UsedNonce,
)
from lti_tool.store.models.evaluation import EvidenceRecord

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
REGISTERED_VIA = ("manual", "dynamic", "file", "demo")


# Built once: every login and launch runs these lookups, and building a statement costs about
# as much as running it.
_PLATFORM = select(Platform).where(Platform.issuer == bindparam("issuer"),
                                   Platform.client_id == bindparam("client_id"))
_PLATFORMS_OF_ISSUER = select(Platform).where(Platform.issuer == bindparam("issuer"))
_DEPLOYMENT = select(Deployment).where(Deployment.platform_id == bindparam("platform_id"),
                                       Deployment.deployment_id == bindparam("deployment_id"))
# A launch's three lookups in one statement: each registration of the issuer, its row for the
# launch's deployment_id (unique per registration) and whether it has used the nonce.
_LAUNCH_CANDIDATES = (
    select(Platform, Deployment,
           exists().where(UsedNonce.platform_id == Platform.id,
                          UsedNonce.nonce == bindparam("nonce")).label("nonce_used"))
    .outerjoin(Deployment, and_(Deployment.platform_id == Platform.id,
                                Deployment.deployment_id == bindparam("deployment_id")))
    .where(Platform.issuer == bindparam("issuer")))


@dataclass(frozen=True)
class LaunchCandidate:
    """A registration of a launch's issuer, read with what the launch will ask of it."""

    platform: Platform
    deployment: Deployment | None  # the row for the launch's deployment_id, if registered
    nonce_used: bool  # whether this registration has consumed the launch's nonce


def find_platform(db: Session, issuer: str, client_id: str) -> Platform | None:
    return db.scalar(_PLATFORM, {"issuer": issuer, "client_id": client_id})


def platforms_for_issuer(db: Session, issuer: str) -> list[Platform]:
    return list(db.scalars(_PLATFORMS_OF_ISSUER, {"issuer": issuer}))


def launch_candidates(db: Session, issuer: str, deployment_id: str,
                      nonce: str) -> list[LaunchCandidate]:
    """The issuer's registrations (as `platforms_for_issuer`), each with its `find_deployment`
    row for `deployment_id` and whether it used `nonce`: one query instead of three."""
    rows = db.execute(_LAUNCH_CANDIDATES, {"issuer": issuer, "deployment_id": deployment_id,
                                           "nonce": nonce})
    return [LaunchCandidate(platform, deployment, bool(used))
            for platform, deployment, used in rows]


def find_deployment(db: Session, platform: Platform, deployment_id: str) -> Deployment | None:
    return db.scalar(_DEPLOYMENT, {"platform_id": platform.id, "deployment_id": deployment_id})


def accept_deployment(db: Session, platform: Platform, deployment_id: str,
                      found: Deployment | None = None) -> Deployment:
    """The launch's deployment if registered and enabled, or newly recorded when the platform
    opted in to accepting new deployments; otherwise a 4xx that names it. `found` is the row
    the launch's checks already read in this transaction."""
    deployment = found if found is not None and found.deployment_id == deployment_id and (
        found.platform_id == platform.id) else find_deployment(db, platform, deployment_id)
    if deployment is None:
        if not platform.auto_accept_deployments:
            raise LaunchError(
                f"Deployment {deployment_id!r} is not registered for client_id "
                f"{platform.client_id!r} of {platform.issuer}. Ask the Micro-credentials Office "
                "to add it."
            )
        try:
            with db.begin_nested():
                deployment = Deployment(platform_id=platform.id, deployment_id=deployment_id,
                                        auto_accepted=True)
                db.add(deployment)
        except IntegrityError:  # a concurrent first launch recorded it first
            deployment = find_deployment(db, platform, deployment_id)
            if deployment is None:
                raise
    if not deployment.enabled:
        raise LaunchError(f"Deployment {deployment_id!r} has been disabled by the Office.")
    return deployment


# --- validation -------------------------------------------------------------------------------


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(value: str | None, *, required: bool = True) -> str | None:
    """Why `value` cannot be a platform URL (None when it can).

    HTTPS everywhere; plain HTTP only on loopback, where development platforms run."""
    if not value:
        return "is required" if required else None
    if len(value) > 1000:
        return "is longer than 1000 characters"
    try:
        parsed = urlparse(value)
        parsed.port  # noqa: B018  (raises on a port that is not a number in range)
    except ValueError:
        return f"is not a well-formed URL: {value!r}"
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return f"must be an absolute http(s) URL, not {value!r}"
    if any(ch.isspace() or ord(ch) < 32 for ch in value):
        return "must not contain spaces or control characters"
    if parsed.scheme == "http" and not is_loopback(parsed.hostname):
        return f"must use HTTPS (plain HTTP is accepted on loopback only): {value!r}"
    if parsed.fragment:
        return "must not carry a #fragment"
    return None


@dataclass
class PlatformSpec:
    """What the Office (or a file, or Dynamic Registration) says about one registration."""

    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    key_set_url: str | None = None
    key_set: dict | None = None
    name: str = ""
    lms_kind: str = "other"
    auth_audience: str | None = None
    deployments: list[str] = field(default_factory=list)
    auto_accept_deployments: bool = False
    rest_base_url: str | None = None
    registered_via: str = "manual"
    # LMS hosts beyond those of the URLs above (`host` or `host:port`).
    lms_hosts: list[str] = field(default_factory=list)

    def problems(self) -> dict[str, str]:
        """Every problem at once, keyed by field, so a form can show them inline."""
        found: dict[str, str] = {}
        for name in ("issuer", "auth_login_url", "auth_token_url"):
            problem = url_problem(getattr(self, name))
            if problem:
                found[name] = problem
        for name in ("key_set_url", "auth_audience", "rest_base_url"):
            problem = url_problem(getattr(self, name), required=False)
            if problem:
                found[name] = problem
        issuer = urlparse(self.issuer or "")
        if "issuer" not in found and (issuer.query or issuer.fragment):
            found["issuer"] = "must have no query or fragment"
        if not self.client_id or not self.client_id.strip():
            found["client_id"] = "is required"
        elif len(self.client_id) > 255:
            found["client_id"] = "is longer than 255 characters"
        if not self.key_set_url and not self.key_set:
            found["key_set_url"] = "is required"
        if self.key_set is not None and not (
            isinstance(self.key_set, dict) and isinstance(self.key_set.get("keys"), list)
        ):
            found["key_set"] = 'must be a JWKS object: {"keys": [...]}'
        if self.lms_kind not in LMS_KINDS:
            found["lms_kind"] = f"must be one of {', '.join(LMS_KINDS)}"
        if self.registered_via not in REGISTERED_VIA:
            found["registered_via"] = f"must be one of {', '.join(REGISTERED_VIA)}"
        for deployment_id in self.deployments:
            if not deployment_id or len(deployment_id) > 255:
                found["deployments"] = "each deployment id must be 1-255 characters"
        if len(self.name) > 255:
            found["name"] = "is longer than 255 characters"
        for host in self.lms_hosts:
            try:
                parse_host_entry(host)
            except ValueError as exc:
                found["lms_hosts"] = f"each LMS host must be host or host:port: {exc}"
        if len(self.lms_hosts) > 50:
            found["lms_hosts"] = "at most 50 LMS hosts"
        return found

    def validate(self) -> PlatformSpec:
        problems = self.problems()
        if problems:
            summary = "; ".join(f"{key} {text}" for key, text in problems.items())
            raise BadRequest(f"The platform registration is not valid: {summary}",
                             details=problems)
        return self


SPEC_FIELDS = {f.name for f in fields(PlatformSpec)}


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def spec_from_mapping(data: Mapping[str, object], *, source: str = "input") -> PlatformSpec:
    """A spec from a dict (form, JSON or TOML file); unknown keys are refused, not ignored."""
    if not isinstance(data, Mapping):
        raise BadRequest(f"{source}: a platform must be an object/table")
    unknown = sorted(set(data) - SPEC_FIELDS)
    if unknown:
        raise BadRequest(f"{source}: unknown field(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(SPEC_FIELDS))}")
    values: dict[str, object] = {}
    for key, value in data.items():
        if key in ("deployments", "lms_hosts"):
            if isinstance(value, str):
                value = [v for v in value.replace(",", " ").split()] if key == "lms_hosts" \
                    else [value]
            if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
                raise BadRequest(f"{source}: {key} must be a list of strings")
            values[key] = [str(v).strip() for v in value if str(v).strip()]
        elif key == "auto_accept_deployments":
            values[key] = _as_bool(value)
        elif key == "key_set":
            values[key] = value
        elif value is None or value == "":
            values[key] = None if key not in ("name", "lms_kind", "registered_via") else ""
        elif not isinstance(value, str | int):
            raise BadRequest(f"{source}: {key} must be a string")
        else:
            values[key] = str(value).strip()
    for required in ("issuer", "client_id", "auth_login_url", "auth_token_url"):
        values.setdefault(required, "")
    if not values.get("lms_kind"):
        values["lms_kind"] = "other"
    if not values.get("registered_via"):
        values["registered_via"] = "manual"
    values.setdefault("name", "")
    return PlatformSpec(**values)  # type: ignore[arg-type]


def load_specs(path: Path) -> list[PlatformSpec]:
    """Platforms from a TOML or JSON file: one platform, or `[[platform]]` / a JSON list."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadRequest(f"Cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"{path} is not valid {path.suffix.lstrip('.').upper()}: {exc}") from exc
    if isinstance(data, dict) and "platform" in data:
        data = data["platform"]
    items = data if isinstance(data, list) else [data]
    if not items:
        raise BadRequest(f"{path} holds no platform")
    return [spec_from_mapping(item, source=f"{path} platform {n}")
            for n, item in enumerate(items, start=1)]


# --- service ----------------------------------------------------------------------------------


def get_platform(db: Session, platform_id: int) -> Platform:
    platform = db.get(Platform, platform_id)
    if platform is None:
        raise NotFound(f"No platform registration with id {platform_id}.")
    return platform


def require_platform(db: Session, issuer: str, client_id: str) -> Platform:
    platform = find_platform(db, issuer, client_id)
    if platform is None:
        raise NotFound(f"No platform registration for issuer {issuer!r} and client_id "
                       f"{client_id!r}.")
    return platform


def list_platforms(db: Session) -> list[Platform]:
    return list(db.scalars(select(Platform).order_by(Platform.id)))


def managed_platforms(db: Session, office_platform_id: int) -> list[Platform]:
    """What an Office signed in through `office_platform_id` may see and manage: the
    registrations of its own institution. Never another institution's."""
    office = db.get(Platform, office_platform_id)
    if office is None or not office.is_active:
        return []
    return list(db.scalars(
        select(Platform).where(Platform.institution_id == office.institution_id)
        .order_by(Platform.id)
    ))


def get_managed_platform(db: Session, office_platform_id: int, platform_id: int) -> Platform:
    """The registration if this Office's institution holds it; otherwise 404 (its existence
    is private)."""
    office = db.get(Platform, office_platform_id)
    platform = db.get(Platform, platform_id)
    if platform is None or office is None or not office.is_active \
            or platform.institution_id != office.institution_id:
        raise NotFound(f"No platform registration with id {platform_id}.")
    return platform


def _apply(platform: Platform, spec: PlatformSpec) -> None:
    for name in ("issuer", "client_id", "auth_login_url", "auth_token_url", "key_set_url",
                 "key_set", "name", "lms_kind", "auth_audience", "auto_accept_deployments",
                 "rest_base_url", "registered_via"):
        setattr(platform, name, getattr(spec, name))
    platform.lms_hosts = sorted({parse_host_entry(h) for h in spec.lms_hosts})


def find_token_pair(db: Session, auth_token_url: str, client_id: str) -> Platform | None:
    """The registration holding (token endpoint, client_id), if any."""
    return db.scalar(select(Platform).where(
        Platform.token_endpoint_key == token_endpoint_key(auth_token_url),
        Platform.client_id == client_id))


def _check_token_pair(db: Session, spec: PlatformSpec, platform_id: int | None = None) -> None:
    """Client assertions name the client_id and go to the token endpoint: a second
    registration claiming another's pair would make the tool obtain that LMS's tokens."""
    holder = find_token_pair(db, spec.auth_token_url, spec.client_id)
    if holder is not None and holder.id != platform_id:
        raise Conflict(f"Another registration already uses client_id {spec.client_id!r} at the "
                       f"token endpoint {spec.auth_token_url!r}: a (token endpoint, client_id) "
                       "pair belongs to one registration.",
                       details={"client_id": "already registered at this token endpoint"})


def add_deployments(db: Session, platform: Platform, deployment_ids: Iterable[str]) -> None:
    """Record deployments not yet known (idempotent)."""
    for deployment_id in deployment_ids:
        if find_deployment(db, platform, deployment_id) is None:
            db.add(Deployment(platform_id=platform.id, deployment_id=deployment_id))
            db.flush()


# --- status and trust -------------------------------------------------------------------------


class RegistrationNotActive(LaunchError):
    """A registration that is pending approval or disabled: its launches get nothing."""

    status = 403
    code = "registration_not_active"


def require_active(platform: Platform) -> None:
    """Only an active registration launches with any rights (checked before anything is
    fetched or stored for the launch)."""
    if platform.status != "active":
        exc = RegistrationNotActive(
            "This LMS registration is waiting for approval by the tool's operator."
            if platform.status == "pending" else
            "This LMS registration has been disabled by the tool's operator.")
        exc.details = {"status": platform.status, "platform_id": platform.id}
        raise exc


def _normal_issuer(issuer: str) -> str:
    return issuer.strip().rstrip("/").lower()


def shared_issuer_list(value: str | Iterable[str]) -> set[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return {_normal_issuer(item) for item in items if item.strip()}


def check_issuer_owner(db: Session, issuer: str, institution_id: int, *,
                       allow_shared: bool = False, shared_issuers: Iterable[str] = ()) -> None:
    """Refuse (409) a registration under an issuer that another institution's active or
    disabled registration already holds, unless the operator allows sharing it or the issuer
    is shared by nature (Canvas cloud: one issuer, a client_id per school). Pending
    registrations hold nothing, so a stranger cannot squat an issuer with open registration."""
    if allow_shared or _normal_issuer(issuer) in shared_issuer_list(shared_issuers):
        return
    holders = {p.institution_id for p in platforms_for_issuer(db, issuer)
               if p.status != "pending"}
    others = holders - {institution_id}
    if others:
        names = ", ".join(sorted(institutions.get_institution(db, i).slug for i in others))
        raise Conflict(f"Issuer {issuer!r} already belongs to institution {names}. A platform "
                       "of another institution cannot register under it unless the operator "
                       "allows it (--allow-shared-issuer).")


def register_platform(db: Session, spec: PlatformSpec, *, institution_id: int | None = None,
                      status: str = "active", allow_shared_issuer: bool = False,
                      shared_issuers: Iterable[str] = ()) -> Platform:
    """Create a registration of `institution_id` (the only institution when None) with
    `status`; (issuer, client_id) already registered is a 409, and so is an issuer another
    institution holds (see `check_issuer_owner`)."""
    spec.validate()
    if status not in PLATFORM_STATUSES:
        raise ValueError(f"unknown registration status {status!r}")
    if find_platform(db, spec.issuer, spec.client_id) is not None:
        raise Conflict(f"A platform with issuer {spec.issuer!r} and client_id "
                       f"{spec.client_id!r} is already registered.")
    _check_token_pair(db, spec)
    if institution_id is None:
        institution_id = institutions.resolve(db, None).id
    if status != "pending":
        check_issuer_owner(db, spec.issuer, institution_id, allow_shared=allow_shared_issuer,
                           shared_issuers=shared_issuers)
    platform = Platform(institution_id=institution_id, status=status)
    _apply(platform, spec)
    db.add(platform)
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        raise Conflict(f"A platform with issuer {spec.issuer!r} and client_id "
                       f"{spec.client_id!r}, or client_id {spec.client_id!r} at this token "
                       "endpoint, is already registered.") from exc
    add_deployments(db, platform, spec.deployments)
    return platform


def update_platform(db: Session, platform: Platform, spec: PlatformSpec) -> Platform:
    """Replace a registration's settings; deployments in `spec` are added, none removed."""
    spec.validate()
    other = find_platform(db, spec.issuer, spec.client_id)
    if other is not None and other.id != platform.id:
        raise Conflict(f"Another registration (id {other.id}) already uses issuer "
                       f"{spec.issuer!r} and client_id {spec.client_id!r}.")
    _check_token_pair(db, spec, platform.id)
    _apply(platform, spec)
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError as exc:
        raise Conflict(f"Another registration already uses client_id {spec.client_id!r} at "
                       "this token endpoint.") from exc
    add_deployments(db, platform, spec.deployments)
    return platform


def upsert_platform(db: Session, spec: PlatformSpec) -> tuple[Platform, bool]:
    """Register or update by (issuer, client_id); returns (platform, created)."""
    existing = find_platform(db, spec.issuer, spec.client_id)
    if existing is None:
        return register_platform(db, spec), True
    return update_platform(db, existing, spec), False


def platform_data_counts(db: Session, platform: Platform) -> dict[str, int]:
    """How much the tool holds for this registration (people, courses)."""
    return {
        "people": db.scalar(select(func.count()).select_from(Person)
                            .where(Person.platform_id == platform.id)) or 0,
        "courses": db.scalar(select(func.count()).select_from(Context)
                             .where(Context.platform_id == platform.id)) or 0,
    }


def retained_records(db: Session, platform: Platform) -> dict[str, int]:
    """Records that must outlive the registration (evidence, credentials, audit entries)."""
    def count(model, *extra) -> int:
        return db.scalar(select(func.count()).select_from(model)
                         .where(model.platform_id == platform.id, *extra)) or 0

    # The registration's own lifecycle (registered, approved, disabled) is not a record of
    # anything it did; every other audit entry is.
    found = {"evidence records": count(EvidenceRecord), "credentials": count(Credential),
             "audit entries": count(AuditEntry, AuditEntry.action.not_like("platform.%"))}
    return {name: n for name, n in found.items() if n}


def remove_platform(db: Session, platform: Platform, *, force: bool = False) -> None:
    """Delete a registration and everything under it. Refused (409) while it holds evidence,
    credentials or audit entries (those are retained: disable it instead), and while it holds
    people or courses unless `force` says the operator means it."""
    retained = retained_records(db, platform)
    if retained:
        held = ", ".join(f"{n} {name}" for name, n in retained.items())
        raise Conflict(
            f"Platform {platform.id} ({platform.issuer}, client_id {platform.client_id}) holds "
            f"{held}, which are kept for the retention period and are never deleted with a "
            f"registration. Disable it instead: lti-tool platform disable {platform.id}",
            details=retained)
    counts = platform_data_counts(db, platform)
    if any(counts.values()) and not force:
        raise Conflict(
            f"Platform {platform.id} ({platform.issuer}, client_id {platform.client_id}) holds "
            f"{counts['people']} people and {counts['courses']} courses; removing it deletes "
            "them too. Confirm to remove anyway.",
            details=counts,
        )
    label = f"Platform {platform.id} ({platform.issuer}, client_id {platform.client_id})"
    try:
        with db.begin_nested():
            db.delete(platform)
            db.flush()
    except IntegrityError as exc:  # RESTRICT: evidence, credentials or audit entries refer to it
        db.expire_all()
        raise Conflict(
            f"{label} cannot be removed: evidence records, decisions, credentials or audit "
            "entries refer to it, and they are kept for their retention period. Disable it "
            "instead.", details={**counts, "kept": True}) from exc


def get_deployment(db: Session, platform: Platform, deployment_pk: int) -> Deployment:
    deployment = db.get(Deployment, deployment_pk)
    if deployment is None or deployment.platform_id != platform.id:
        raise NotFound(f"No deployment {deployment_pk} in platform {platform.id}.")
    return deployment


def set_deployment_enabled(deployment: Deployment, enabled: bool) -> None:
    deployment.enabled = enabled


def set_auto_accept(platform: Platform, enabled: bool) -> None:
    platform.auto_accept_deployments = enabled


def approve_platform(db: Session, platform: Platform, institution_id: int, *,
                     allow_shared_issuer: bool = False, shared_issuers: Iterable[str] = (),
                     actor_label: str = "cli") -> Platform:
    """Make a pending (or disabled) registration active in `institution_id`. A registration
    that was active once stays in its institution (its records belong there)."""
    if platform.status == "active":
        raise Conflict(f"Platform {platform.id} is already active.")
    if platform.status == "disabled" and platform.institution_id != institution_id:
        raise Conflict(f"Platform {platform.id} belongs to another institution; a disabled "
                       "registration is re-enabled in its own institution only.")
    check_issuer_owner(db, platform.issuer, institution_id, allow_shared=allow_shared_issuer,
                       shared_issuers=shared_issuers)
    before = platform.status
    platform.institution_id = institution_id
    platform.status = "active"
    _audit(db, platform, "platform.approve", actor_label, {"from": before})
    return platform


def disable_platform(db: Session, platform: Platform, *, actor_label: str = "cli") -> Platform:
    """No launch of a disabled registration gets any rights; its records stay."""
    if platform.status == "disabled":
        raise Conflict(f"Platform {platform.id} is already disabled.")
    before = platform.status
    platform.status = "disabled"
    _audit(db, platform, "platform.disable", actor_label, {"from": before})
    return platform


def _audit(db: Session, platform: Platform, action: str, actor_label: str,
           details: dict) -> None:
    db.add(AuditEntry(institution_id=platform.institution_id, platform_id=platform.id,
                      actor_label=actor_label, action=action,
                      target=f"{platform.issuer} {platform.client_id}", details=details))
    db.flush()


def prune_pending_registrations(db: Session, *, older_than_days: int,
                                now: datetime | None = None) -> int:
    """Remove registrations still pending `older_than_days` after they were made (open
    Dynamic Registration that no operator approved) and invites expired unused; a pending
    registration holds no people or records. Returns how many registrations went."""
    now = now or utcnow()
    cutoff = now - timedelta(days=older_than_days)
    stale = list(db.scalars(select(Platform).where(Platform.status == "pending",
                                                   Platform.created_at < cutoff)))
    for platform in stale:
        db.delete(platform)
    db.execute(delete(RegistrationInvite).where(RegistrationInvite.used_at.is_(None),
                                                RegistrationInvite.expires_at < now))
    db.flush()
    return len(stale)


def platform_summary(platform: Platform) -> dict:
    """A JSON-ready description (CLI `--json`, logs); never includes REST tokens."""
    return {
        "id": platform.id,
        "status": platform.status,
        "institution": (platform.institution.slug if platform.institution is not None
                        and not institutions.is_reserved(platform.institution) else None),
        "name": platform.name,
        "issuer": platform.issuer,
        "client_id": platform.client_id,
        "lms_kind": platform.lms_kind,
        "auth_login_url": platform.auth_login_url,
        "auth_token_url": platform.auth_token_url,
        "key_set_url": platform.key_set_url,
        "auth_audience": platform.auth_audience,
        "auto_accept_deployments": platform.auto_accept_deployments,
        "registered_via": platform.registered_via,
        "lms_hosts": list(platform.lms_hosts or []),
        "allowed_hosts": platform.allowed_hosts,
        "created_at": platform.created_at.isoformat() if platform.created_at else None,
        "deployments": [
            {"deployment_id": d.deployment_id, "enabled": d.enabled,
             "auto_accepted": d.auto_accepted}
            for d in sorted(platform.deployments, key=lambda d: d.id)
        ],
    }
