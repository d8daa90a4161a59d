"""Mapping files: an offering's mapping as YAML or JSON (`lti-tool offering map`).

    outcomes:
      LO1:
        - item: "Essay 1"        # a gradebook item by its title ...
          weight: 2
        - item_id: 12            # ... or by the tool's id (`offering map-export` writes both)
          weight: 1
      LO2:
        - criterion_id: 5        # an LMS rubric criterion
        - tool_rubric: true      # the LO's rubric scored in the tool
    attempt: 1                   # optional: 2 maps the re-evaluation

The parser is pure and checks untrusted input: every problem is collected with its path
(`outcomes.LO1[0].item`) and reported together; nothing is returned unless the whole file is
valid. Whether the LO codes and items exist is the caller's to say (`GradebookIndex`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from lti_tool.domain.errors import FieldProblem, ValidationFailed
from lti_tool.domain.evaluation import GRADE_ITEM, LMS_RUBRIC, TOOL_RUBRIC, SourceSpec

SCHEMA_VERSION = 1
SOURCE_KEYS = ("item", "item_id", "criterion_id", "tool_rubric")
ENTRY_KEYS = frozenset({*SOURCE_KEYS, "weight"})
TOP_KEYS = frozenset({"$schema", "schema_version", "offering", "mc", "attempt", "outcomes"})
MAX_OUTCOMES = 200
MAX_SOURCES = 200


@dataclass(frozen=True)
class GradebookIndex:
    """What the course's gradebook holds: item ids by title, and the known ids."""

    titles: Mapping[str, list[str]] = field(default_factory=dict)
    item_ids: frozenset[str] = frozenset()
    criterion_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class MappingFile:
    attempt: int
    sources: dict[str, list[SourceSpec]]


def _weight(raw: Any, path: str, problems: list[FieldProblem]) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        problems.append(FieldProblem(path, "must be a number"))
        return Decimal(0)
    try:
        weight = Decimal(str(raw).strip())
    except InvalidOperation:
        problems.append(FieldProblem(path, f"{str(raw)[:40]!r} is not a number"))
        return Decimal(0)
    if not weight.is_finite():
        problems.append(FieldProblem(path, "must be a finite number"))
    return weight


def _ref(entry: Mapping[str, Any], path: str, index: GradebookIndex,
         problems: list[FieldProblem]) -> SourceSpec | None:
    given = [key for key in SOURCE_KEYS if key in entry]
    if len(given) != 1:
        problems.append(FieldProblem(path, "give exactly one of item, item_id, criterion_id "
                                           "or tool_rubric"))
        return None
    key = given[0]
    value = entry[key]
    if key == "tool_rubric":
        if value is not True:
            problems.append(FieldProblem(f"{path}.tool_rubric", "must be true"))
            return None
        return SourceSpec(TOOL_RUBRIC, "", Decimal(1))
    if key == "item":
        if not isinstance(value, str) or not value.strip():
            problems.append(FieldProblem(f"{path}.item", "must be a gradebook item's title"))
            return None
        ids = index.titles.get(value.strip(), [])
        if not ids:
            problems.append(FieldProblem(f"{path}.item",
                                         f"no gradebook item of this course is called "
                                         f"{value.strip()[:80]!r}"))
            return None
        if len(ids) > 1:
            problems.append(FieldProblem(f"{path}.item",
                                         f"{len(ids)} gradebook items are called "
                                         f"{value.strip()[:80]!r}; give item_id "
                                         f"({', '.join(sorted(ids))})"))
            return None
        return SourceSpec(GRADE_ITEM, ids[0], Decimal(1))
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        problems.append(FieldProblem(f"{path}.{key}", "must be a whole number"))
        return None
    ref = str(int(str(value)))
    known = index.item_ids if key == "item_id" else index.criterion_ids
    if ref not in known:
        what = "gradebook item" if key == "item_id" else "LMS rubric criterion"
        problems.append(FieldProblem(f"{path}.{key}", f"{ref} is not a {what} of this course"))
        return None
    return SourceSpec(GRADE_ITEM if key == "item_id" else LMS_RUBRIC, ref, Decimal(1))


def parse_mapping_file(data: Any, index: GradebookIndex) -> MappingFile:
    """The mapping a file describes, or `ValidationFailed` with every problem and its path."""
    problems: list[FieldProblem] = []
    if not isinstance(data, Mapping):
        raise ValidationFailed([FieldProblem("", "the file must hold a mapping with an "
                                                 "`outcomes` key")])
    for key in data:
        if key not in TOP_KEYS:
            problems.append(FieldProblem(str(key)[:80], "is not a key of a mapping file"))
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        problems.append(FieldProblem("schema_version", f"must be {SCHEMA_VERSION}"))
    attempt = data.get("attempt", 1)
    if isinstance(attempt, bool) or attempt not in (1, 2):
        problems.append(FieldProblem("attempt", "must be 1 (the assessment) or 2 (the "
                                                "re-evaluation)"))
        attempt = 1
    outcomes = data.get("outcomes")
    sources: dict[str, list[SourceSpec]] = {}
    if not isinstance(outcomes, Mapping):
        problems.append(FieldProblem("outcomes", "must map each outcome code to its sources"))
    elif len(outcomes) > MAX_OUTCOMES:
        problems.append(FieldProblem("outcomes", f"at most {MAX_OUTCOMES} outcomes"))
    else:
        for code, entries in outcomes.items():
            path = f"outcomes.{str(code)[:40]}"
            if not isinstance(code, str) or not code.strip():
                problems.append(FieldProblem(path, "an outcome code must be text"))
                continue
            if entries is None:
                entries = []
            if not isinstance(entries, list) or len(entries) > MAX_SOURCES:
                problems.append(FieldProblem(path, f"must be a list of at most {MAX_SOURCES} "
                                                   "sources"))
                continue
            specs = sources.setdefault(code, [])
            for number, entry in enumerate(entries):
                where = f"{path}[{number}]"
                if not isinstance(entry, Mapping):
                    problems.append(FieldProblem(where, "must be a source such as "
                                                        "{item: TITLE, weight: 1}"))
                    continue
                problems.extend(FieldProblem(f"{where}.{str(k)[:40]}", "is not a key of a "
                                             "source") for k in entry if k not in ENTRY_KEYS)
                spec = _ref(entry, where, index, problems)
                weight = _weight(entry.get("weight", 1), f"{where}.weight", problems)
                if spec is not None:
                    ref = code if spec.kind == TOOL_RUBRIC else spec.ref
                    specs.append(SourceSpec(spec.kind, ref, weight))
    if problems:
        raise ValidationFailed(problems)
    return MappingFile(attempt=int(attempt), sources=sources)


def file_path(domain_path: str) -> str:
    """A mapping rule's path (`outcomes.LO1.sources[0].weight`) as the file's
    (`outcomes.LO1[0].weight`)."""
    return domain_path.replace(".sources[", "[")
