"""The Office's plan form as a browser would post it (fields named by path), and a page's
form read back as a browser would post it."""

from __future__ import annotations

from html.parser import HTMLParser

from lti_tool.catalogue import importexport
from lti_tool.domain.catalogue import DesignPlan


def plan_form(plan: DesignPlan) -> list[tuple[str, str]]:
    """Every field of `plan`, plus the empty slots the form always offers."""
    data = importexport.plan_to_dict(plan)
    form = [(key, "" if value is None else str(value)) for key, value in data.items()
            if not isinstance(value, list) and key != "schema_version"]
    form += [(name, "\n".join(data[name])) for name in importexport.LIST_FIELDS]
    for i, outcome in enumerate(data["outcomes"]):
        form += [(f"outcomes[{i}].{k}", outcome[k]) for k in ("code", "statement", "domain")]
        if outcome["required"]:
            form.append((f"outcomes[{i}].required", "on"))
        form.append((f"outcomes[{i}].rubric.threshold", outcome["rubric"]["threshold"]))
        for j, level in enumerate(outcome["rubric"]["levels"]):
            form += [(f"outcomes[{i}].rubric.levels[{j}].{k}", str(v)) for k, v in level.items()]
        form += [(f"outcomes[{i}].rubric.levels[9].code", ""),
                 (f"outcomes[{i}].rubric.levels[9].lower_bound", "")]
    slot = len(data["outcomes"])
    form += [(f"outcomes[{slot}].code", ""), (f"outcomes[{slot}].domain", ""),
             (f"outcomes[{slot}].required", "on")]
    return form


class _FormFields(HTMLParser):
    """The fields a browser would post from a page's form (without any submit button)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self.ids: list[str] = []
        self.label_fors: list[str] = []
        self.buttons: list[tuple[str, str]] = []
        self._textarea: str | None = None
        self._select: str | None = None
        self._selected: str | None = None
        self._first_option: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a and tag in ("input", "textarea", "select"):
            self.ids.append(a["id"])
        if tag == "label" and "for" in a:
            self.label_fors.append(a["for"])
        if tag == "button" and a.get("name"):
            self.buttons.append((a["name"], a.get("value", "")))
        if tag == "input" and a.get("name"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.fields.append((a["name"], a.get("value", "on")))
            else:
                self.fields.append((a["name"], a.get("value", "")))
        elif tag == "textarea":
            self._textarea = a["name"]
            self.fields.append((a["name"], ""))
        elif tag == "select":
            self._select, self._selected, self._first_option = a["name"], None, None
        elif tag == "option" and self._select is not None:
            if self._first_option is None:
                self._first_option = a.get("value", "")
            if "selected" in a:
                self._selected = a.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            name, value = self.fields[-1]
            self.fields[-1] = (name, value + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select" and self._select is not None:
            value = self._selected if self._selected is not None else self._first_option
            self.fields.append((self._select, value or ""))
            self._select = None


def page_form(html: str) -> _FormFields:
    """Parse the (single) form of a page: `.fields` as a browser would post them."""
    parser = _FormFields()
    parser.feed(html)
    return parser


def fill(fields: list[tuple[str, str]], values: dict[str, str]) -> list[tuple[str, str]]:
    """`fields` with the named ones set to `values` (each name must be on the page)."""
    missing = set(values) - {name for name, _ in fields}
    assert not missing, missing
    return [(name, values.get(name, value)) for name, value in fields]
