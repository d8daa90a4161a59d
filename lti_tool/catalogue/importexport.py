"""Design Plan files (YAML or JSON) and the Office's form: parse, check, write.

Everything that arrives from outside (an import file, a submitted form) goes through
`parse_plan`, which reports every problem at once: JSON Schema problems and domain-rule
problems together, each with its field path (`outcomes[2].rubric.threshold`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from lti_tool.domain.catalogue import AwardingBody, DesignPlan, LearningOutcome
from lti_tool.domain.errors import FieldProblem, ValidationFailed
from lti_tool.domain.rubric import PerformanceLevel, Rubric

SCHEMA_PATH = Path(__file__).with_name("microcredential.schema.json")
SCHEMA_URL_PATH = "/schemas/microcredential.json"
FORMATS = ("yaml", "json")
MAX_FILE_BYTES = 1024 * 1024
TEXT_FIELDS = ("title", "description", "purpose", "target_group", "content_plan",
               "stackability", "recognition", "quality_assurance", "image", "field_of_study",
               "isced_f_code", "participation_form", "prerequisites", "supervision",
               "qf_ehea_cycle", "learning_setting", "region", "further_information",
               "overall_result")
LIST_FIELDS = ("teaching_methods", "assessment_methods", "requires")
_TYPE_WORDS = {"string": "text", "integer": "a whole number", "number": "a number",
               "boolean": "true or false", "array": "a list", "object": "a mapping of fields",
               "null": "empty"}
_PATTERN_WORDS = {
    "code": "2-40 letters, digits, '.', '_' or '-', starting with a letter or digit",
    "isced_f_code": "an ISCED-F 2013 code: 2, 3 or 4 digits starting 00-10 or 99 (e.g. 0613), "
                    "or empty",
    "country": "an ISO 3166-1 alpha-2 code such as TR or DE",
}
_REQUIRED = re.compile(r"^'(?P<name>.+)' is a required property$")


@cache
def schema() -> dict:
    """The published JSON Schema of a Design Plan file."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


# --- reading --------------------------------------------------------------------------------


def load_text(text: str, fmt: str = "yaml") -> Any:
    """Parse a file's text; a syntax error is a problem with its line, never a crash."""
    if len(text.encode("utf-8", "replace")) > MAX_FILE_BYTES:
        raise ValidationFailed([FieldProblem("", "the file is larger than 1 MiB")])
    try:
        if fmt == "json":
            return json.loads(text, parse_float=Decimal)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed([FieldProblem(
            "", f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ValidationFailed([FieldProblem("", f"not valid YAML: {problem}{where}")]) from exc


def format_for(filename: str) -> str:
    return "json" if filename.lower().endswith(".json") else "yaml"


def parse_plan(data: Any) -> DesignPlan:
    """A checked DesignPlan, or ValidationFailed with every schema and domain problem."""
    problems = schema_problems(data)
    plan, conversion = _plan_from_dict(data) if isinstance(data, Mapping) else (None, [])
    found = list(problems)
    if plan is not None:
        found += _not_covered(conversion + plan.problems(), problems)
    if found:
        raise ValidationFailed(sorted(found, key=_path_key))
    assert plan is not None
    return plan


def schema_problems(data: Any) -> list[FieldProblem]:
    found: list[FieldProblem] = []
    for error in _validator().iter_errors(data):
        found.extend(_describe(error))
    return found


def _describe(error: ValidationError) -> list[FieldProblem]:
    path = format_path(error.absolute_path)
    validator, value = error.validator, error.validator_value
    if validator == "required":
        match = _REQUIRED.match(error.message)
        name = match.group("name") if match else "?"
        return [FieldProblem(_join(path, name), "is required")]
    if validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = set(error.schema.get("properties", {}))
        return [FieldProblem(_join(path, str(key)), "unknown field")
                for key in error.instance if key not in known]
    if validator == "type" and path == "isced_f_code":  # YAML reads 0613 as a number
        return [FieldProblem(path, 'must be text: quote the code in YAML, e.g. "0613"')]
    messages = {
        "type": lambda: "must be " + " or ".join(
            _TYPE_WORDS.get(t, t) for t in ([value] if isinstance(value, str) else value)),
        "enum": lambda: "must be one of " + ", ".join(map(str, value)),
        "const": lambda: f"must be {value}",
        "minimum": lambda: f"must be at least {value}",
        "maximum": lambda: f"must be at most {value}",
        "minLength": lambda: "must not be empty" if value == 1 else f"at least {value} characters",
        "maxLength": lambda: f"at most {value} characters",
        "minItems": lambda: f"needs at least {value} item{'s' if value != 1 else ''}",
        "pattern": lambda: _PATTERN_WORDS.get(path.rsplit(".", 1)[-1],
                                              "has an invalid format"),
        "oneOf": lambda: "must be a number of at least 0 with at most two decimals (e.g. 62.5)",
    }
    describe = messages.get(str(validator))
    return [FieldProblem(path, describe() if describe else error.message)]


def format_path(parts: Iterable[str | int]) -> str:
    """('outcomes', 2, 'rubric', 'threshold') -> 'outcomes[2].rubric.threshold'."""
    text = ""
    for part in parts:
        text = f"{text}[{part}]" if isinstance(part, int) else _join(text, part)
    return text


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _path_key(problem: FieldProblem) -> list[tuple[int, int | str]]:
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.\[\]]+", problem.path)]


def _not_covered(found: list[FieldProblem], reported: list[FieldProblem]) -> list[FieldProblem]:
    """Domain problems the schema has not already reported at the same place."""
    paths = {p.path for p in reported}
    kept: list[FieldProblem] = []
    for problem in found:
        covered = any(problem.path == p or problem.path.startswith((p + ".", p + "["))
                      for p in paths if p)
        if not covered and problem not in kept:
            kept.append(problem)
    return kept


class _Reader:
    """Lenient conversion: wrong types fall back (the schema has reported them) and bad
    decimals become problems, so domain rules still run on everything else."""

    def __init__(self) -> None:
        self.problems: list[FieldProblem] = []

    def text(self, data: Mapping, key: str) -> str:
        value = data.get(key, "")
        return value.strip() if isinstance(value, str) else ""

    def integer(self, data: Mapping, key: str) -> int:
        value = data.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def decimal(self, data: Mapping, key: str, path: str) -> Decimal | None:
        value = data.get(key)
        if value is None or isinstance(value, bool):
            return None
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return None
        if not number.is_finite():
            self.problems.append(FieldProblem(path, "must be a finite number"))
            return None
        return number

    def texts(self, data: Mapping, key: str) -> tuple[str, ...]:
        value = data.get(key)
        if not isinstance(value, list):
            return ()
        return tuple(item.strip() if isinstance(item, str) else "" for item in value)

    def mapping(self, data: Mapping, key: str) -> Mapping:
        value = data.get(key)
        return value if isinstance(value, Mapping) else {}

    def items(self, data: Mapping, key: str) -> list[Mapping]:
        value = data.get(key)
        if not isinstance(value, list):
            return []
        return [item if isinstance(item, Mapping) else {} for item in value]


def _plan_from_dict(data: Mapping) -> tuple[DesignPlan, list[FieldProblem]]:
    read = _Reader()
    outcomes = []
    for index, item in enumerate(read.items(data, "outcomes")):
        rubric = read.mapping(item, "rubric")
        levels = tuple(
            PerformanceLevel(
                code=read.text(level, "code"),
                label=read.text(level, "label"),
                lower_bound=read.decimal(
                    level, "lower_bound",
                    f"outcomes[{index}].rubric.levels[{number}].lower_bound") or Decimal(0),
                descriptor=read.text(level, "descriptor"),
            )
            for number, level in enumerate(read.items(rubric, "levels")))
        required = item.get("required", True)
        outcomes.append(LearningOutcome(
            code=read.text(item, "code"), statement=read.text(item, "statement"),
            domain=read.text(item, "domain"),
            rubric=Rubric(levels=levels, threshold=read.text(rubric, "threshold")),
            required=required if isinstance(required, bool) else True))
    plan = DesignPlan(
        code=read.text(data, "code"),
        kind=read.text(data, "kind"),
        language=read.text(data, "language") or "en",
        tqf_level=read.integer(data, "tqf_level"),
        eqf_level=read.integer(data, "eqf_level"),
        workload_hours=read.decimal(data, "workload_hours", "workload_hours") or Decimal(0),
        ects=read.decimal(data, "ects", "ects"),
        teaching_methods=read.texts(data, "teaching_methods"),
        assessment_methods=read.texts(data, "assessment_methods"),
        requires=read.texts(data, "requires"),
        outcomes=tuple(outcomes),
        co_awarding_bodies=tuple(
            AwardingBody(name=read.text(body, "name"), country=read.text(body, "country"),
                         legal_identifier=read.text(body, "legal_identifier"),
                         url=read.text(body, "url"))
            for body in read.items(data, "co_awarding_bodies")),
        **{name: read.text(data, name) for name in TEXT_FIELDS},
    )
    return plan, read.problems


# --- writing --------------------------------------------------------------------------------


def _number(value: Decimal) -> int | float:
    """Decimals with at most two places survive float's shortest repr exactly."""
    return int(value) if value == value.to_integral_value() else float(value)


def plan_to_dict(plan: DesignPlan) -> dict:
    """The file form of a plan, fields in the schema's order."""
    data: dict[str, Any] = {
        "schema_version": 1,
        "code": plan.code, "title": plan.title, "description": plan.description,
        "language": plan.language, "kind": plan.kind, "image": plan.image,
        "purpose": plan.purpose, "target_group": plan.target_group,
        "field_of_study": plan.field_of_study, "isced_f_code": plan.isced_f_code,
        "participation_form": plan.participation_form,
        "learning_setting": plan.learning_setting,
        "tqf_level": plan.tqf_level, "eqf_level": plan.eqf_level,
        "qf_ehea_cycle": plan.qf_ehea_cycle,
        "workload_hours": _number(plan.workload_hours),
        "ects": None if plan.ects is None else _number(plan.ects),
        "teaching_methods": list(plan.teaching_methods),
        "assessment_methods": list(plan.assessment_methods),
        "supervision": plan.supervision, "overall_result": plan.overall_result,
        "prerequisites": plan.prerequisites,
        "content_plan": plan.content_plan, "stackability": plan.stackability,
        "recognition": plan.recognition, "quality_assurance": plan.quality_assurance,
        "region": plan.region,
        "co_awarding_bodies": [
            {"name": b.name, "country": b.country, "legal_identifier": b.legal_identifier,
             "url": b.url} for b in plan.co_awarding_bodies],
        "further_information": plan.further_information,
        "requires": list(plan.requires),
        "outcomes": [
            {"code": o.code, "statement": o.statement, "domain": o.domain,
             "required": o.required,
             "rubric": {"levels": [{"code": lv.code, "label": lv.label,
                                    "descriptor": lv.descriptor,
                                    "lower_bound": _number(lv.lower_bound)}
                                   for lv in o.rubric.levels],
                        "threshold": o.rubric.threshold}}
            for o in plan.outcomes],
    }
    return data


class _BlockDumper(yaml.SafeDumper):
    """Multi-line text as YAML literal blocks, so exported plans read like the examples."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_text)


def dump(plan: DesignPlan, fmt: str = "yaml") -> str:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    data = plan_to_dict(plan)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    header = f"# yaml-language-server: $schema={SCHEMA_URL_PATH}\n"
    return header + yaml.dump(data, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True,
                              width=100)


# --- the Office's form ----------------------------------------------------------------------

_FORM_KEY = re.compile(r"^[a-z_]+(\[\d{1,3}\])?(\.[a-z_]+(\[\d{1,3}\])?)*$")
_INTEGER_FIELDS = ("tqf_level", "eqf_level")
_NUMBER_FIELDS = ("tqf_level", "eqf_level", "workload_hours", "ects", "lower_bound")
_MISSING = object()
MAX_FORM_ITEMS = 100


def form_to_dict(form: Iterable[tuple[str, str]]) -> dict:
    """Turn posted fields named by path (`outcomes[0].rubric.levels[1].code`) into a plan
    document; blank outcome and level rows (the empty slots the form offers) are dropped."""
    root: dict = {}
    known = set(schema()["properties"]) - {"$schema", "schema_version"}
    for key, raw in form:
        if not _FORM_KEY.match(key) or re.split(r"[.\[]", key, maxsplit=1)[0] not in known:
            continue  # the CSRF token, `sid` and anything that is not a plan field
        value = raw.replace("\r\n", "\n").strip()
        parts = [p for p in re.split(r"[.\[\]]+", key) if p]
        if any(p.isdigit() and int(p) >= MAX_FORM_ITEMS for p in parts):
            continue
        _put(root, parts, value)
    return _finish(root)


def _put(node: dict, parts: list[str], value: str) -> None:
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return
    node[parts[-1]] = value


def _finish(node: Any, name: str = "") -> Any:
    if not isinstance(node, dict):
        return _coerce(name, node)
    if node and all(key.isdigit() for key in node):
        rows = [_finish(node[key], name) for key in sorted(node, key=int)]
        return [row for row in rows if not _blank(row)]
    data = {key: _finish(value, key) for key, value in node.items()}
    data = {key: value for key, value in data.items() if value is not _MISSING}
    if "rubric" in data or "statement" in data:  # an outcome row: a checkbox posts only when on
        data["required"] = data.get("required") is True
    return data


def _coerce(name: str, value: str) -> Any:
    if value == "" and name in _NUMBER_FIELDS:
        return None if name == "ects" else _MISSING  # so the schema says "is required"
    if name in LIST_FIELDS:
        return [line.strip() for line in value.split("\n") if line.strip()]
    if name in _INTEGER_FIELDS:
        return int(value) if value.isdigit() else value
    if name == "required":
        return value.lower() in ("on", "true", "1", "yes")
    return value


def _blank(row: Any) -> bool:
    """True when a repeated row has no text at all (booleans do not count)."""
    if isinstance(row, dict):
        return all(_blank(value) for value in row.values())
    if isinstance(row, list):
        return all(_blank(value) for value in row)
    return row is None or isinstance(row, bool) or row == ""
