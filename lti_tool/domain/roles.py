"""LIS roles -> the tool's three roles: learner, instructor, admin.

Roles arrive as full LIS v2 URIs in the id_token, as short names in NRPS (`Learner`), and as
LTI 1.1 URNs in some older platforms; all three spellings are accepted. An institution or
system Administrator (the Micro-credentials Office) wins over course roles, so an Office member
who also teaches still reaches the Office pages; among course roles instructor wins over learner.
A role set that maps to nothing (Observer, Guest, Member, only `system/person#User`...) gives
None: the launch is refused with a 403 and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

ToolRole = Literal["learner", "instructor", "admin"]

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
# Context (membership) roles that teach or build the course.
INSTRUCTOR_ROLES = frozenset(
    {"Instructor", "TeachingAssistant", "ContentDeveloper", "Mentor", "Administrator"}
)
LEARNER_ROLES = frozenset({"Learner"})
# Institution and system roles that make a person part of the Office.
ADMIN_ROLES = frozenset({"Administrator", "SysAdmin"})
_PRECEDENCE: tuple[ToolRole, ...] = ("admin", "instructor", "learner")


def _parse(role: str) -> tuple[str, str]:
    """('scope', 'Name') of one role string: scope is membership, institution or system."""
    role = role.strip()
    if role.startswith(LIS):
        path, _, fragment = role[len(LIS):].partition("#")
        scope = path.split("/", 1)[0]  # membership/Instructor#TeachingAssistant -> membership
        if scope == "membership" and not fragment:
            return "", ""
        return scope, fragment
    if role.startswith("urn:lti:"):
        # urn:lti:role:ims/lis/Instructor, urn:lti:instrole:ims/lis/Administrator,
        # urn:lti:sysrole:ims/lis/SysAdmin, urn:lti:role:ims/lis/TeachingAssistant/...
        kind, _, rest = role[len("urn:lti:"):].partition(":")
        parts = rest.split("/")
        name = parts[2] if len(parts) > 2 else ""
        scopes = {"role": "membership", "instrole": "institution", "sysrole": "system"}
        return scopes.get(kind, ""), name
    if "#" in role or "/" in role or ":" in role:
        return "", ""  # some other vocabulary (e.g. a vendor URI): not ours to guess
    return "membership", role  # NRPS short name: a context role


def tool_role_of(role: str) -> ToolRole | None:
    """The tool role one LIS role grants, if any."""
    scope, name = _parse(role)
    if scope in ("institution", "system") and name in ADMIN_ROLES:
        return "admin"
    if scope == "membership":
        if name in INSTRUCTOR_ROLES:
            return "instructor"
        if name in LEARNER_ROLES:
            return "learner"
    return None


def map_roles(roles: Iterable[str]) -> ToolRole | None:
    """The strongest tool role among `roles` (admin > instructor > learner), or None."""
    granted = {tool_role_of(r) for r in roles if isinstance(r, str)}
    for role in _PRECEDENCE:
        if role in granted:
            return role
    return None


def canonical_role(role: str) -> str:
    """One spelling per role: NRPS short context roles (`Instructor`) as their full LIS URI
    (`http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor`); others unchanged."""
    role = role.strip()
    if role and not any(mark in role for mark in "#/:"):
        return f"{LIS}membership#{role}"
    return role


def same_roles(first: Iterable[str], second: Iterable[str]) -> bool:
    """Whether two role lists say the same, whatever the spelling (launch URIs, NRPS names)
    and order: the launch and the roster must not keep rewriting each other's roles."""
    return ({canonical_role(r) for r in first if isinstance(r, str)}
            == {canonical_role(r) for r in second if isinstance(r, str)})
