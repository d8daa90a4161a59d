"""LTI Names and Role Provisioning Services 2.0: the course roster, paged.

NRPS roles are short names (`Learner`, `Instructor`) where the id_token has full LIS URIs;
`short_role` accepts both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lti_tool.domain.roles import map_roles
from lti_tool.lms.http import LmsBadReply
from lti_tool.lms.service import BearerClient, with_query

SCOPE_MEMBERSHIP = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEMBERSHIP_CONTAINER = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"

def short_role(roles: list[str]) -> str | None:
    """learner | instructor | admin | None for a list of LIS role URIs or NRPS short names."""
    return map_roles(list(roles))


@dataclass(frozen=True)
class Member:
    user_id: str
    roles: tuple[str, ...]
    role: str | None
    active: bool
    name: str
    given_name: str
    family_name: str
    email: str | None
    lis_person_sourcedid: str | None

    @classmethod
    def from_json(cls, data: Any) -> Member | None:
        if not isinstance(data, dict) or not isinstance(data.get("user_id"), str | int) or (
                data["user_id"] in ("", True, False)):
            return None
        raw_roles = data.get("roles")
        roles = tuple(r for r in raw_roles if isinstance(r, str)) if isinstance(
            raw_roles, list) else ()

        def text(name: str) -> str:
            value = data.get(name)
            return str(value)[:500] if isinstance(value, str | int) else ""

        return cls(
            user_id=str(data["user_id"])[:255],
            roles=roles,
            role=short_role(list(roles)),
            # Status is optional in NRPS; absent means Active.
            active=str(data.get("status") or "Active").lower() == "active",
            name=text("name"),
            given_name=text("given_name"),
            family_name=text("family_name"),
            email=text("email") or None,
            lis_person_sourcedid=text("lis_person_sourcedid") or None,
        )


class NrpsClient:
    def __init__(self, client: BearerClient) -> None:
        self.client = client

    def member_pages(self, memberships_url: str, *, limit: int | None = None
                     ) -> Iterator[list[Member]]:
        url = with_query(memberships_url, limit=limit)
        for body, _response in self.client.pages(
            url, [SCOPE_MEMBERSHIP], accept=MEMBERSHIP_CONTAINER,
            needed=SCOPE_MEMBERSHIP + " (Names and Role Provisioning)", what="the course roster",
        ):
            if not isinstance(body, dict) or not isinstance(body.get("members"), list):
                raise LmsBadReply("The NRPS membership container has no members list.")
            yield [m for m in (Member.from_json(e) for e in body["members"]) if m is not None]

    def members(self, memberships_url: str, **kwargs: Any) -> Iterator[Member]:
        for page in self.member_pages(memberships_url, **kwargs):
            yield from page
