"""Who acts: the one actor type every service takes and every entry point builds.

A launch gives a person with their tool role (the web session fills in the rest: platform,
course, session: a `SessionActor`, whose ids are never None); the CLI, the scheduler and an
offering's policy act as labelled actors without a person. The evidence archive and the
audit log record `who()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Actor:
    """The person (or the system part) behind an action."""

    person_id: int | None
    role: str
    label: str = ""
    platform_id: int | None = None
    # The institution of the registration: its Office sees and changes only this one.
    institution_id: int | None = None
    context_id: int | None = None
    resource_link_id: int | None = None
    locale: str = "en"
    message_type: str = "LtiResourceLinkRequest"
    session_id: int | None = None
    csrf_secret: str = ""
    launch_data: dict[str, Any] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_instructor(self) -> bool:
        return self.role == "instructor"

    def who(self) -> dict[str, Any]:
        """Who acted, as archived: the person id (if any) and a label (else the role)."""
        return {"person_id": self.person_id, "label": self.label or self.role}


@dataclass(frozen=True, kw_only=True)
class SessionActor(Actor):
    """The actor of a web session (an LTI launch): always a person, the registration it came
    through, that registration's institution and the session. What the pages get from
    `require_actor()`; services take any `Actor`, so this is the same type with the ids that a
    launch always has made non-optional."""

    person_id: int
    platform_id: int
    institution_id: int
    session_id: int


SYSTEM = Actor(person_id=None, role="system", label="system")
SCHEDULER = Actor(person_id=None, role="system", label="scheduler")
CLI = Actor(person_id=None, role="admin", label="cli")


def labelled(label: str, role: str = "system") -> Actor:
    """An actor without a person: "cli", "demo seed", "policy:automatic", "learner:7"."""
    return Actor(person_id=None, role=role, label=label)
