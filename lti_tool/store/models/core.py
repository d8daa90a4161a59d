"""Institutions, platforms, deployments, people, course contexts, memberships, keys, sessions.

An `Institution` is the awarding body (its catalogue, issuer profile and badge keys); every
`Platform` registration belongs to exactly one institution. Every row below a `Platform`
belongs to exactly one registration: that is what keeps one LMS from ever seeing another's data.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from lti_tool.outbound import hosts_of, token_endpoint_key
from lti_tool.store.db import Base, UTCDateTime, utcnow

LMS_KINDS = ("moodle", "canvas", "other")
# Only an active registration launches with any rights (see DESIGN.md, "trust").
PLATFORM_STATUSES = ("pending", "active", "disabled")


class Institution(Base):
    """An awarding body: its Office, catalogue, issuer profile (/issuers/<slug>) and keys."""

    __tablename__ = "institution"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    # ISO 3166-1 alpha-2, upper case
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(255), nullable=True)
    url: Mapped[str] = mapped_column(String(1000), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    legal_identifier: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Institution {self.id} {self.slug}>"


class Platform(Base):
    """An LMS registration, keyed by (issuer, client_id), never by issuer alone."""

    __tablename__ = "platform"
    __table_args__ = (UniqueConstraint("issuer", "client_id"),
                      # A (token endpoint, client_id) pair belongs to one registration.
                      UniqueConstraint("token_endpoint_key", "client_id",
                                       name="uq_platform_token_endpoint_client"))

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institution.id", ondelete="RESTRICT"), index=True)
    # pending | active | disabled (PLATFORM_STATUSES); new rows are pending unless told
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    lms_kind: Mapped[str] = mapped_column(String(20), default="other")
    auth_login_url: Mapped[str] = mapped_column(String(1000))
    auth_token_url: Mapped[str] = mapped_column(String(1000))
    key_set_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    # A static public key set (JWKS JSON) for platforms that publish no URL.
    key_set: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    auth_audience: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    auto_accept_deployments: Mapped[bool] = mapped_column(Boolean, default=False)
    # Optional LMS REST credentials (Moodle web-service token, Canvas API token) and base URL.
    rest_base_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    rest_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    registered_via: Mapped[str] = mapped_column(String(20), default="manual")
    # LMS hosts outbound calls may reach besides the hosts of the URLs above (`host` or
    # `host:port`), from Dynamic Registration's platform configuration or the operator.
    lms_hosts: Mapped[list] = mapped_column(JSON, default=list)
    # auth_token_url normalised (lti_tool.outbound.token_endpoint_key), for the unique pair.
    token_endpoint_key: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    # The registration whose Office added this one on the platforms page (it may manage it).
    managed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("platform.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    deployments: Mapped[list[Deployment]] = relationship(
        back_populates="platform", cascade="all, delete-orphan"
    )
    institution: Mapped[Institution] = relationship()

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @validates("auth_token_url")
    def _keep_token_endpoint_key(self, _key: str, value: str) -> str:
        self.token_endpoint_key = token_endpoint_key(value)
        return value

    @property
    def allowed_hosts(self) -> list[str]:
        """Every host an outbound call for this registration may reach."""
        return hosts_of((self.auth_token_url, self.auth_login_url, self.key_set_url,
                         self.rest_base_url), self.lms_hosts or ())

    def __repr__(self) -> str:
        return f"<Platform {self.id} {self.issuer} client_id={self.client_id}>"


class Deployment(Base):
    __tablename__ = "deployment"
    __table_args__ = (UniqueConstraint("platform_id", "deployment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    auto_accepted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    platform: Mapped[Platform] = relationship(back_populates="deployments")


class Person(Base):
    """A user of one platform, identified by the id_token `sub`."""

    __tablename__ = "person"
    __table_args__ = (UniqueConstraint("platform_id", "sub"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(500), default="")
    given_name: Mapped[str] = mapped_column(String(255), default="")
    family_name: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str | None] = mapped_column(String(500), nullable=True)
    lis_person_sourcedid: Mapped[str | None] = mapped_column(String(255), nullable=True)
    locale: Mapped[str | None] = mapped_column(String(20), nullable=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Context(Base):
    """A course (LTI context) of one platform."""

    __tablename__ = "context"
    __table_args__ = (UniqueConstraint("platform_id", "context_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"))
    deployment_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployment.id", ondelete="SET NULL"), nullable=True
    )
    context_id: Mapped[str] = mapped_column(String(255))
    label: Mapped[str] = mapped_column(String(255), default="")
    title: Mapped[str] = mapped_column(String(500), default="")
    # Service endpoints and scopes the latest launch carried (AGS, NRPS).
    ags_lineitems_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    ags_lineitem_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    ags_scopes: Mapped[list] = mapped_column(JSON, default=list)
    nrps_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    nrps_versions: Mapped[list] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ResourceLink(Base):
    __tablename__ = "resource_link"
    __table_args__ = (UniqueConstraint("context_id", "resource_link_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    resource_link_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(500), default="")
    custom: Mapped[dict] = mapped_column(JSON, default=dict)
    ags_lineitem_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)


class Membership(Base):
    """A person's role in a context: learner, instructor or admin (see domain.roles)."""

    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("context_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))
    lis_roles: Mapped[list] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str] = mapped_column(String(20), default="launch")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ToolKey(Base):
    """The tool's own signing keys. The private part may instead live in a 0600 file."""

    __tablename__ = "tool_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(100), unique=True)
    # lti | badge-rsa | badge-ed25519
    purpose: Mapped[str] = mapped_column(String(20), default="lti")
    # Badge keys belong to one institution (its issuer signs with them); `lti` keys to none.
    institution_id: Mapped[int | None] = mapped_column(
        ForeignKey("institution.id", ondelete="RESTRICT"), nullable=True, index=True)
    algorithm: Mapped[str] = mapped_column(String(20), default="RS256")
    public_jwk: Mapped[dict] = mapped_column(JSON)
    private_pem: Mapped[str | None] = mapped_column(Text, nullable=True)
    private_path: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Published until this moment after retirement; badge keys are published forever (None).
    publish_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UsedNonce(Base):
    """Launch nonces already consumed; the unique key makes replay fail across processes."""

    __tablename__ = "used_nonce"
    __table_args__ = (UniqueConstraint("platform_id", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"))
    nonce: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoginState(Base):
    """Retired: OIDC state and nonce of the previous release's logins. Logins now carry them
    in the signed state itself (`lti_tool.launch.login_state`) and write nothing; the table
    stays (expand/contract) so that nodes of the previous release still run on this schema
    during a rolling upgrade, the prune job empties it, and a later contract migration drops
    it."""

    __tablename__ = "login_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(255), unique=True)
    nonce: Mapped[str] = mapped_column(String(255))
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"))
    target_link_uri: Mapped[str] = mapped_column(String(1000), default="")
    storage_target: Mapped[str | None] = mapped_column(String(100), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A browser session bound to one launch (cookie or, cookie-less, a token in the page)."""

    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    context_id: Mapped[int | None] = mapped_column(
        ForeignKey("context.id", ondelete="CASCADE"), nullable=True
    )
    resource_link_id: Mapped[int | None] = mapped_column(
        ForeignKey("resource_link.id", ondelete="SET NULL"), nullable=True
    )
    role: Mapped[str] = mapped_column(String(20))
    locale: Mapped[str] = mapped_column(String(20), default="en")
    message_type: Mapped[str] = mapped_column(String(60), default="LtiResourceLinkRequest")
    # Deep-linking return URL and opaque data, kept for the response.
    launch_data: Mapped[dict] = mapped_column(JSON, default=dict)
    csrf_secret: Mapped[str] = mapped_column(String(64))
    # SHA-256 of the launching browser's User-Agent and network (web.auth.client_binding);
    # a token presented by another client is refused. NULL only for sessions made in tests.
    binding: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Sliding: every request pushes it forward (idle timeout), never past `absolute_expires_at`.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    absolute_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UsedSessionCode(Base):
    """A one-time session code (launch code, page code) that has been exchanged.

    The codes themselves are signed and carry their session and expiry; this table only makes
    each usable once (the unique key wins any race between worker processes).
    """

    __tablename__ = "used_session_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_id: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class RegistrationInvite(Base):
    """A one-time Dynamic Registration URL (policy `invite`)."""

    __tablename__ = "registration_invite"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The registration made with this invite belongs to this institution, active at once.
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institution.id", ondelete="CASCADE"), index=True)
    # The operator allowed the registration to share an issuer another institution holds.
    allow_shared_issuer: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEntry(Base):
    """Who did what, for the Office's audit log."""

    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # RESTRICT: an audit entry keeps naming its registration and actor (disabled or
    # pseudonymised, never deleted).
    # The institution whose Office may read the entry (CLI actions have no platform).
    institution_id: Mapped[int | None] = mapped_column(
        ForeignKey("institution.id", ondelete="RESTRICT"), nullable=True, index=True)
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("platform.id", ondelete="RESTRICT"), nullable=True
    )
    actor_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="RESTRICT"), nullable=True
    )
    actor_label: Mapped[str] = mapped_column(String(255), default="")
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(255), default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class RateLimitCounter(Base):
    """A fixed-window counter of the rate limits (lti_tool.web.ratelimit), shared by every
    worker through the database."""

    __tablename__ = "rate_limit_counter"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    # Seconds since the epoch when this window ends.
    expires_at: Mapped[float] = mapped_column(Float)
