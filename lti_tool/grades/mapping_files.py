"""Mappings as files: `lti-tool offering list | map | map-export`.

A file (YAML or JSON, `lti_tool.domain.mapping_file`, schema `/schemas/mapping.json`) names
gradebook items by title or id. Importing it stores exactly what the instructor's mapping page
stores for the same choice (`lti_tool.grades.mappings.save_mapping`: a new version, learners
re-evaluated); every problem is reported with its path and nothing is stored on error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.domain.actors import CLI, Actor
from lti_tool.domain.errors import FieldProblem, ValidationFailed
from lti_tool.domain.evaluation import GRADE_ITEM, LMS_RUBRIC, TOOL_RUBRIC, mapping_problems
from lti_tool.domain.mapping_file import (
    SCHEMA_VERSION,
    GradebookIndex,
    file_path,
    parse_mapping_file,
)
from lti_tool.errors import BadRequest
from lti_tool.grades.decisions import get_offering
from lti_tool.grades.mappings import known_refs, outcomes_for, save_mapping
from lti_tool.grades.marks import current_mapping, mapping_sources
from lti_tool.settings import Settings
from lti_tool.store.models.catalogue import MicroCredential, MicroCredentialVersion, Offering
from lti_tool.store.models.core import Context, Platform
from lti_tool.store.models.evaluation import OutcomeMapping
from lti_tool.store.models.grades import GradeItem

SCHEMA_PATH = Path(__file__).with_name("mapping.schema.json")
SCHEMA_URL_PATH = "/schemas/mapping.json"
MAX_FILE_BYTES = 1024 * 1024


def list_offerings(db: Session) -> list[dict[str, Any]]:
    """Every offering: id, MC code and version, course (title and LMS id), registration."""
    rows = db.execute(
        select(Offering.id, MicroCredential.code, MicroCredentialVersion.version,
               Context.title, Context.context_id, Platform.id, Platform.issuer,
               Platform.client_id)
        .join(MicroCredentialVersion, MicroCredentialVersion.id == Offering.mc_version_id)
        .join(MicroCredential, MicroCredential.id == MicroCredentialVersion.micro_credential_id)
        .join(Context, Context.id == Offering.context_id)
        .join(Platform, Platform.id == Offering.platform_id)
        .order_by(Offering.id)).all()
    return [{"id": oid, "mc_code": code, "mc_version": version, "course_title": title or "",
             "course_lms_id": lms_id, "registration": {"id": pid, "issuer": issuer,
                                                      "client_id": client_id}}
            for oid, code, version, title, lms_id, pid, issuer, client_id in rows]


def gradebook_index(db: Session, offering: Offering) -> GradebookIndex:
    """The items a file may name for this offering (active, and for an embedded MC only the
    ones the offering names; the tool's own passback column is never among them)."""
    refs = known_refs(db, offering)
    titles: dict[str, list[str]] = {}
    for item_id, label in db.execute(select(GradeItem.id, GradeItem.label).where(
            GradeItem.id.in_([int(i) for i in refs[GRADE_ITEM]])).order_by(GradeItem.id)):
        titles.setdefault((label or "").strip(), []).append(str(item_id))
    return GradebookIndex(titles=titles, item_ids=frozenset(refs[GRADE_ITEM]),
                          criterion_ids=frozenset(refs[LMS_RUBRIC]))


def read_mapping_text(text: str) -> Any:
    """YAML or JSON (JSON is YAML) from untrusted text."""
    if len(text.encode("utf-8", "replace")) > MAX_FILE_BYTES:
        raise BadRequest(f"The mapping file is larger than {MAX_FILE_BYTES} bytes.")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise BadRequest(f"The mapping file is not valid YAML or JSON{where}.") from exc


def import_mapping(db: Session, settings: Settings, offering_id: int, data: Any,
                   actor: Actor = CLI) -> OutcomeMapping:
    """Store the mapping a file describes (a new version), or `ValidationFailed` listing
    every problem with its path; nothing is stored on error."""
    offering = get_offering(db, offering_id)
    parsed = parse_mapping_file(data, gradebook_index(db, offering))
    if isinstance(data, dict) and "offering" in data and str(data["offering"]) != str(
            offering.id):
        raise ValidationFailed([FieldProblem(
            "offering", f"this file is for offering {data['offering']}, not {offering.id}")])
    problems = [FieldProblem(file_path(p.path), p.message) for p in mapping_problems(
        outcomes_for(db, offering.mc_version_id), parsed.sources, known_refs(db, offering))]
    if problems:
        raise ValidationFailed(problems)
    return save_mapping(db, settings, offering.id, parsed.sources, actor,
                        attempt_no=parsed.attempt, note="mapping file")


def export_mapping(db: Session, offering_id: int, attempt: int = 1) -> dict[str, Any]:
    """The offering's current mapping as a file `import_mapping` reads back unchanged."""
    offering = get_offering(db, offering_id)
    sources = mapping_sources(current_mapping(db, offering.id, attempt))
    index = gradebook_index(db, offering)
    # An item is named by its title when that is unambiguous, else by its id.
    unique = {ids[0]: title for title, ids in index.titles.items() if len(ids) == 1 and title}
    outcomes: dict[str, list[dict[str, Any]]] = {}
    for outcome in outcomes_for(db, offering.mc_version_id):
        entries = []
        for spec in sources.get(outcome.code, []):
            if spec.kind == GRADE_ITEM:
                entry: dict[str, Any] = {"item": unique[spec.ref]} if spec.ref in unique \
                    else {"item_id": int(spec.ref)}
            elif spec.kind == LMS_RUBRIC:
                entry = {"criterion_id": int(spec.ref)}
            elif spec.kind == TOOL_RUBRIC:
                entry = {"tool_rubric": True}
            else:
                continue
            entries.append({**entry, "weight": _number(spec.weight)})
        outcomes[outcome.code] = entries
    return {"$schema": SCHEMA_URL_PATH, "schema_version": SCHEMA_VERSION,
            "offering": offering.id, "mc": offering.mc_version.code, "attempt": attempt,
            "outcomes": outcomes}


def _number(value: Any) -> int | float | str:
    text = format(value.normalize(), "f") if hasattr(value, "normalize") else str(value)
    if "." not in text:
        return int(text)
    return float(text) if len(text) <= 15 else text


def dump_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def dump_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
