"""The gradebook columns the tool made itself (grade passback), recognised in every LMS shape.

Passback creates one AGS line item per offering with the tag `OWN_TAG` and the resourceId
`offering-<id>` (`lti_tool.grades.passback`); the LMS then lists that column like any other.
It is never a source of marks: mapping it would make an outcome depend on the tool's own
result. The same column shows up as:

- an AGS line item (Moodle, Canvas): its `tag` and `resourceId` say so;
- a Moodle Web Services grade item: Moodle's AGS line item URL carries the grade item id
  (`.../lineitems/<grade item id>/lineitem`), so the id of an own line item names it;
- a Canvas REST assignment: Canvas does not say which line item an assignment stands for, so
  it is recognised by the label passback gave it (and its 100 points).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal

OWN_TAG = "micro-credential"
OWN_RESOURCE_ID = re.compile(r"offering-\d+")
OWN_LABEL_PREFIX = "Micro-credential: "
OWN_MAXIMUM = Decimal(100)
_MOODLE_LINEITEM = re.compile(r"/lineitems/(\d+)/lineitem(?:[?#]|$)")


def is_own_line_item(tag: str | None, resource_id: str | None) -> bool:
    """An AGS line item the tool created (by its tag or its resourceId)."""
    return (tag or "").strip() == OWN_TAG or bool(
        OWN_RESOURCE_ID.fullmatch((resource_id or "").strip()))


def moodle_grade_item_ids(own_lineitem_urls: Iterable[str]) -> set[str]:
    """The Moodle grade item ids behind the tool's own AGS line item URLs."""
    found = (_MOODLE_LINEITEM.search(url) for url in own_lineitem_urls)
    return {match.group(1) for match in found if match}


def is_own_label(label: str | None, maximum: Decimal | None, own_labels: Iterable[str]) -> bool:
    """A column another REST API lists under a label the tool's own line item has."""
    return bool(label) and label in set(own_labels) and (
        maximum is None or Decimal(maximum) == OWN_MAXIMUM)
