"""The launch after the id_token verified: state, role, then one transaction of writes.

`check_launch` is read-only: it ties the token to its login (state, nonce, target_link_uri,
registration) and decides the role, so every refusal happens before anything is written.
`complete_launch` then, in the caller's transaction, accepts the deployment, consumes the
nonce, and with it the state it derives from (the `UsedNonce` unique key makes a replay fail
even when two worker processes race), upserts the people and starts the web session
(`store.sessions.start_session`, the one place sessions are made; it needs no request).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_tool.domain.locales import normalise_locale
from lti_tool.domain.roles import map_roles
from lti_tool.errors import LaunchError
from lti_tool.launch import claims as c
from lti_tool.launch.login_state import LoginState, StateRefused, read, target_digest
from lti_tool.launch.people import LaunchRecord, launch_locale, record_launch
from lti_tool.launch.platforms import accept_deployment
from lti_tool.launch.validation import VerifiedLaunch
from lti_tool.settings import Settings
from lti_tool.store.db import utcnow
from lti_tool.store.models.core import LoginState as LoginStateRow
from lti_tool.store.models.core import UsedNonce
from lti_tool.store.sessions import open_session

STATE_MAX = 512
# Built once (every launch runs it): building a statement costs about as much as running it.
_USE_NONCE = insert(cast(Table, UsedNonce.__table__))  # Core: no unit of work for a row
_LEGACY_LOGIN = select(LoginStateRow).where(LoginStateRow.state == bindparam("state"))
_NONCE_USED = select(UsedNonce.id).where(UsedNonce.platform_id == bindparam("platform_id"),
                                         UsedNonce.nonce == bindparam("nonce"))


class RoleNotAllowed(LaunchError):
    """The launch is genuine, but the person's roles give no access to this tool or message."""

    status = 403
    code = "role_not_allowed"


@dataclass(frozen=True)
class CheckedLaunch:
    launch: VerifiedLaunch
    login: LoginState
    role: str


@dataclass(frozen=True)
class LaunchOutcome:
    record: LaunchRecord
    role: str
    message_type: str
    session_token: str
    session_id: int


def _nonce_used(db: Session, launch: VerifiedLaunch) -> bool:
    if launch.nonce_used is not None:  # read with the registration (`select_registration`)
        return launch.nonce_used
    return db.scalar(_NONCE_USED, {"platform_id": launch.platform.id,
                                   "nonce": launch.nonce}) is not None


def check_state(db: Session, launch: VerifiedLaunch, state: str | None,
                secret: str | bytes) -> LoginState:
    """The login this launch answers (its state signed with `secret`); refuses unknown,
    expired, mismatched and already used states."""
    if not state:
        raise LaunchError("The launch has no state parameter: start it again from the course.")
    if len(state) > STATE_MAX or "\x00" in state:
        raise LaunchError("The launch state parameter is too long or not text.")
    try:
        login = read(secret, state)
    except StateRefused as exc:
        if exc.expired:
            raise LaunchError("The login for this launch expired: open the tool again.") from exc
        legacy = _previous_release_login(db, state)
        if legacy is None:
            raise LaunchError("The launch state is unknown or already used: open the tool "
                              "again from the course.") from exc
        login = legacy
    if login.platform_id != launch.platform.id:
        raise LaunchError("State mismatch: the state was issued to another platform "
                          "registration than the one that signed the id_token.")
    if not hmac.compare_digest(login.nonce.encode(), launch.nonce.encode()):
        raise LaunchError("The id_token nonce is not the one this tool sent at login.")
    target = launch.get(c.TARGET_LINK_URI)
    if target is not None and login.target_digest and not login.target_matches(target):
        raise LaunchError(f"The id_token target_link_uri {target!r} differs from the one the "
                          "login named.")
    if _nonce_used(db, launch):
        raise LaunchError("This launch was already used: its nonce has been consumed "
                          "(replayed id_token).")
    return login


def _previous_release_login(db: Session, state: str) -> LoginState | None:
    """A login begun on a node of the previous release (a `login_state` row) and finished here,
    during a rolling upgrade; single use through the nonce row like any other. Goes with the
    table, in the release that drops it."""
    row = db.scalar(_LEGACY_LOGIN, {"state": state})
    if row is None:
        return None
    if row.expires_at <= utcnow():
        raise LaunchError("The login for this launch expired: open the tool again.")
    return LoginState(state=state, nonce=row.nonce, platform_id=row.platform_id,
                      target_digest=target_digest(row.target_link_uri)
                      if row.target_link_uri else "",
                      storage_target=row.storage_target, expires_at=row.expires_at)


def launch_role(launch: VerifiedLaunch) -> str:
    """The tool role, or a 403 that names the roles when they give no access."""
    role = map_roles(launch.roles)
    if role is None:
        shown = ", ".join(launch.roles) or "none"
        raise RoleNotAllowed(f"Your roles in this course ({shown}) give no access to the "
                             "micro-credentials tool.")
    if launch.message_type == c.DEEP_LINKING_REQUEST and role == "learner":
        raise RoleNotAllowed("Only instructors can add micro-credentials to a course.")
    return role


def check_launch(db: Session, launch: VerifiedLaunch, state: str | None,
                 secret: str | bytes) -> CheckedLaunch:
    """All the read-only checks after the signature: state, nonce, role."""
    login = check_state(db, launch, state, secret)
    return CheckedLaunch(launch=launch, login=login, role=launch_role(launch))


def _consume(db: Session, checked: CheckedLaunch, settings: Settings) -> None:
    """Use up the nonce, and with it the state; a concurrent twin of this launch fails here.
    The row outlives both the id_token and the state, so neither can be used again."""
    launch = checked.launch
    leeway = timedelta(seconds=settings.jwt_leeway_seconds)
    try:
        db.execute(_USE_NONCE, {
            "platform_id": launch.platform.id, "nonce": launch.nonce,
            "expires_at": max(launch.expires_at, checked.login.expires_at, utcnow()) + leeway})
    except IntegrityError as exc:
        raise LaunchError("This launch was already used: its nonce has been consumed "
                          "(replayed id_token).") from exc


def session_launch_data(launch: VerifiedLaunch) -> dict:
    """What later pages need from the launch: deployment, presentation, deep-linking settings."""
    presentation = launch.obj(c.LAUNCH_PRESENTATION)
    data: dict = {"deployment_id": launch.deployment_id}
    for key in ("return_url", "document_target"):
        if isinstance(presentation.get(key), str):
            data[key] = presentation[key]
    if launch.message_type == c.DEEP_LINKING_REQUEST:
        data["deep_linking_settings"] = launch.obj(c.DL_SETTINGS)
    return data


def complete_launch(db: Session, settings: Settings, checked: CheckedLaunch, *,
                    binding: str | None = None) -> LaunchOutcome:
    """Write the launch (caller commits, or rolls back on any error); `binding` ties the
    session to the launching browser (`web.auth.client_binding`)."""
    launch = checked.launch
    deployment = accept_deployment(db, launch.platform, launch.deployment_id, launch.deployment)
    # A repeat launch's upserts only read: consuming the nonce after them keeps the first write,
    # and with it SQLite's write lock, as close to the commit as it can be. Any refusal still
    # rolls back everything.
    record = record_launch(db, launch, deployment, checked.role)
    _consume(db, checked, settings)
    session = open_session(
        db,
        platform_id=launch.platform.id,
        person_id=record.person.id,
        context_id=record.context.id,
        resource_link_id=record.resource_link.id if record.resource_link else None,
        role=checked.role,
        locale=normalise_locale(launch_locale(launch)) or settings.default_locale,
        message_type=launch.message_type,
        launch_data=session_launch_data(launch),
        binding=binding,
    )
    return LaunchOutcome(record=record, role=checked.role, message_type=launch.message_type,
                         session_token=session.token, session_id=session.id)
