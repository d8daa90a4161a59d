"""Deep Linking 2.0: what an instructor can place in the course, and the signed response."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DeepLinkItem:
    """One placeable thing (an approved micro-credential), as the catalogue offers it.

    `custom` travels in the LtiResourceLink content item; the LMS sends it back on every launch
    of the placed link (catalogue puts `offering_id` there).
    """

    id: str
    title: str
    text: str = ""
    custom: dict[str, str] = field(default_factory=dict)
