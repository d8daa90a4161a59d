"""Micro-credentials: the Design Plan, its learning outcomes, the approval workflow, pathways.

Pure rules (no I/O). Where a rule comes from the university's directive the article is cited
(`../shared/reference/micro-credentials-directive.txt`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Hashable, Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from lti_tool.domain.errors import FieldProblem, IllegalTransition, ValidationFailed
from lti_tool.domain.rubric import Rubric

KINDS = ("course", "embedded")
OUTCOME_DOMAINS = ("knowledge", "skill", "competence")  # Art. 6/2-c
LANGUAGES = ("en", "tr", "de", "fr", "es", "it", "ar", "ru")
# Art. 6/2-e: face-to-face, online or hybrid; the EU's "form of participation" (Art. 3 basis,
# Council Recommendation 2022/C 243/02) that every badge states (Art. 4/1-c, Art. 11/2).
PARTICIPATION_FORMS = ("online", "in_person", "blended")
# ISCED-F 2013 field of education: broad (2 digits, 00-10 or 99), narrow (3), detailed (4).
ISCED_F_PATTERN = re.compile(r"^(0[0-9]|10|99)([0-9]{1,2})?$")
MAX_FIELD_OF_STUDY = 255
# Council Recommendation 2022/C 243/02, Annex I (the standard metadata of Art. 4/1-c, 11/2).
# Supervision and identity verification during assessment, the Annex's three cases with the
# "supervised with identity verification" case split into online and onsite as the EU list does.
SUPERVISION = ("unsupervised_no_id", "supervised_no_id", "supervised_online_id",
               "supervised_onsite_id")
# Cycles of the Qualifications Framework of the European Higher Education Area (QF-EHEA).
QF_EHEA_CYCLES = ("short", "first", "second", "third")
# The EU learning setting (Europass "learning setting" list): formal or non-formal learning.
LEARNING_SETTINGS = ("formal", "non_formal")
# How the credential states an overall result beside the per-outcome levels (the Annex's
# optional "grade achieved"): `pass_fail` says passed; `lowest_level` gives the lowest level
# reached over the required outcomes, which needs every outcome to use the same level codes.
OVERALL_RESULTS = ("pass_fail", "lowest_level")
COUNTRY_PATTERN = re.compile(r"^[A-Z]{2}$")
MAX_REGION = 100
MAX_LEGAL_IDENTIFIER = 100
MAX_CO_AWARDING_BODIES = 20
# The Annex I elements a plan must give (the others come from the institution and the award),
# with the plan field that holds each: approval is refused while one is missing.
ANNEX_MANDATORY = (
    ("title", "title"),
    ("learning outcomes", "outcomes"),
    ("notional workload", "workload_hours"),
    ("EQF level", "eqf_level"),
    ("type of assessment", "assessment_methods"),
    ("form of participation", "participation_form"),
    ("type of quality assurance", "quality_assurance"),
)
# Art. 4/1-f: a micro-credential course is at most 30 hours.
COURSE_MAX_HOURS = Decimal(30)
# One ECTS credit stands for 25-30 hours of notional workload (ECTS Users' Guide).
HOURS_PER_ECTS = (Decimal(25), Decimal(30))
# Art. 4/1-ş: revalidation at least once every three years.
Component = TypeVar("Component", bound=Hashable)
REVALIDATION_YEARS = 3
# The Office is reminded this many days before a revalidation is due (pages, queues, CLI).
REVALIDATION_NOTICE_DAYS = 90
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,39}$")
MAX_DECIMAL_PLACES = 2

# Workflow (DESIGN.md "Status"): action -> {from status: to status}.
STATUSES = ("draft", "in_review", "approved", "lapsed", "retired")
TRANSITIONS: dict[str, dict[str, str]] = {
    "submit": {"draft": "in_review"},
    "reject": {"in_review": "draft"},
    "approve": {"in_review": "approved"},
    "revalidate": {"approved": "approved", "lapsed": "approved"},
    "lapse": {"approved": "lapsed"},
    "retire": {"approved": "retired", "lapsed": "retired"},
}
# Art. 12/3-a and Art. 13: verification, approval and re-verification are the Office's.
OFFICE_ACTIONS = frozenset({"approve", "reject", "revalidate", "retire"})
ISSUING_STATUSES = frozenset({"approved"})
# Versions that need (and may get) a revalidation.
REVALIDATABLE_STATUSES = frozenset(TRANSITIONS["revalidate"])
EDITABLE_IN_PLACE = frozenset({"draft"})
EDITABLE_AS_NEW_VERSION = frozenset({"approved", "lapsed"})


@dataclass(frozen=True)
class LearningOutcome:
    """One LO: what a learner knows or can do, and the rubric that judges it (Art. 6/2-c,d)."""

    code: str
    statement: str
    domain: str
    rubric: Rubric
    required: bool = True

    def problems(self) -> list[FieldProblem]:
        found: list[FieldProblem] = []
        if not self.code.strip():
            found.append(FieldProblem("code", "must not be empty"))
        if not self.statement.strip():
            found.append(FieldProblem("statement", "must not be empty"))
        if self.domain not in OUTCOME_DOMAINS:
            found.append(FieldProblem("domain", f"must be one of {', '.join(OUTCOME_DOMAINS)}"))
        found.extend(FieldProblem(f"rubric.{p.path}", p.message) for p in self.rubric.problems())
        for index, level in enumerate(self.rubric.levels):
            if not level.label.strip():
                found.append(FieldProblem(f"rubric.levels[{index}].label", "must not be empty"))
            if _decimal_places(level.lower_bound) > MAX_DECIMAL_PLACES:
                found.append(FieldProblem(f"rubric.levels[{index}].lower_bound",
                                          "at most two decimal places"))
        return found


@dataclass(frozen=True)
class AwardingBody:
    """A co-awarding body of a joint micro-credential (Art. 2/2; Annex I "awarding body(ies)").

    `country` is ISO 3166-1 alpha-2; `legal_identifier` a national registration, VAT or EUID
    number (what ELM's `eidasLegalIdentifier` carries).
    """

    name: str
    country: str
    legal_identifier: str
    url: str = ""

    def problems(self) -> list[FieldProblem]:
        found: list[FieldProblem] = []
        if not self.name.strip():
            found.append(FieldProblem("name", "must not be empty"))
        elif len(self.name) > 255:
            found.append(FieldProblem("name", "at most 255 characters"))
        if not COUNTRY_PATTERN.fullmatch(self.country):
            found.append(FieldProblem("country", "an ISO 3166-1 alpha-2 code such as TR or DE"))
        if not self.legal_identifier.strip():
            found.append(FieldProblem("legal_identifier", "must not be empty"))
        elif len(self.legal_identifier) > MAX_LEGAL_IDENTIFIER:
            found.append(FieldProblem("legal_identifier",
                                      f"at most {MAX_LEGAL_IDENTIFIER} characters"))
        if self.url and not self.url.startswith(("https://", "http://")):
            found.append(FieldProblem("url", "must be an http(s) URL"))
        return found


@dataclass(frozen=True)
class DesignPlan:
    """A micro-credential as the Office defines it: the Design Plan of Art. 4/1-g and Art. 6/1.

    `requires` names other micro-credentials (by code) that together make this one a
    competency development pathway (Art. 4/1-i, Art. 6/2-f,g).

    `field_of_study` (with an optional ISCED-F 2013 code) and `participation_form` are part of
    the standard badge metadata (Art. 4/1-c, Art. 11/2): the credential's `fieldOfStudy` and
    the EU "form of participation" (Art. 6/2-e). They default to empty only so that the
    dataclass can be built field by field; `problems()` requires both.
    """

    code: str
    title: str
    description: str
    kind: str
    purpose: str
    target_group: str
    tqf_level: int
    eqf_level: int
    workload_hours: Decimal
    outcomes: tuple[LearningOutcome, ...]
    teaching_methods: tuple[str, ...]
    assessment_methods: tuple[str, ...]
    content_plan: str
    quality_assurance: str
    language: str = "en"
    ects: Decimal | None = None
    stackability: str = ""
    recognition: str = ""
    image: str = ""
    requires: tuple[str, ...] = field(default_factory=tuple)
    field_of_study: str = ""
    isced_f_code: str = ""
    participation_form: str = ""
    # Annex I elements beyond the directive's Design Plan (all optional but the form of
    # participation above, which ANNEX_MANDATORY lists): see the constants at the top.
    prerequisites: str = ""
    supervision: str = ""
    qf_ehea_cycle: str = ""
    learning_setting: str = ""
    region: str = ""  # the issuer's region for this MC; the institution's region when empty
    co_awarding_bodies: tuple[AwardingBody, ...] = field(default_factory=tuple)
    further_information: str = ""
    overall_result: str = ""

    def problems(self) -> list[FieldProblem]:
        """Every rule this plan breaks, each with the path of the field at fault."""
        found: list[FieldProblem] = []
        if not CODE_PATTERN.match(self.code):
            found.append(FieldProblem(
                "code", "2-40 letters, digits, '.', '_' or '-', starting with a letter or digit"))
        for name in ("title", "description", "purpose", "target_group", "content_plan",
                     "quality_assurance", "field_of_study"):
            if not getattr(self, name).strip():
                found.append(FieldProblem(name, "must not be empty"))
        found.extend(self._badge_metadata_problems())
        found.extend(self._annex_problems())
        if self.kind not in KINDS:
            found.append(FieldProblem("kind", f"must be one of {', '.join(KINDS)}"))
        if self.language not in LANGUAGES:
            found.append(FieldProblem("language", f"must be one of {', '.join(LANGUAGES)}"))
        for name in ("tqf_level", "eqf_level"):  # Art. 12/3-c: TQF and EQF descriptors
            if not 1 <= getattr(self, name) <= 8:
                found.append(FieldProblem(name, "must be between 1 and 8"))
        found.extend(self._workload_problems())
        for name in ("teaching_methods", "assessment_methods"):
            values = getattr(self, name)
            if not values:
                found.append(FieldProblem(name, "name at least one method"))
            found.extend(FieldProblem(f"{name}[{i}]", "must not be empty")
                         for i, value in enumerate(values) if not value.strip())
        if self.image and not self.image.startswith(("https://", "http://", "data:image/")):
            found.append(FieldProblem("image", "must be an http(s) URL or a data:image URL"))
        found.extend(self._outcome_problems())
        found.extend(self._requires_problems())
        return found

    def warnings(self) -> list[FieldProblem]:
        """Advice that does not block saving: ECTS and workload that disagree."""
        found: list[FieldProblem] = []
        if self.ects is not None and self.ects > 0 and self.workload_hours > 0:
            low, high = (self.ects * bound for bound in HOURS_PER_ECTS)
            if not low <= self.workload_hours <= high:
                found.append(FieldProblem(
                    "ects",
                    f"{self.ects} ECTS is {low:g}-{high:g} hours of workload, "
                    f"but the plan says {self.workload_hours:g} hours"))
        if 1 <= self.tqf_level <= 8 and 1 <= self.eqf_level <= 8 \
                and self.tqf_level != self.eqf_level:
            found.append(FieldProblem(
                "eqf_level", "TQF levels correspond one to one to EQF levels; check both"))
        return found

    def validate(self) -> DesignPlan:
        found = self.problems()
        if found:
            raise ValidationFailed(found)
        return self

    def _badge_metadata_problems(self) -> list[FieldProblem]:
        """Field of study and form of participation, which every badge states (Art. 11/2)."""
        found: list[FieldProblem] = []
        if len(self.field_of_study) > MAX_FIELD_OF_STUDY:
            found.append(FieldProblem("field_of_study",
                                      f"at most {MAX_FIELD_OF_STUDY} characters"))
        if self.isced_f_code and not ISCED_F_PATTERN.fullmatch(self.isced_f_code):
            found.append(FieldProblem(
                "isced_f_code", "an ISCED-F 2013 code: 2, 3 or 4 digits starting 00-10 or 99 "
                                "(e.g. 0613), or empty"))
        if self.participation_form not in PARTICIPATION_FORMS:
            found.append(FieldProblem(
                "participation_form", f"must be one of {', '.join(PARTICIPATION_FORMS)}"))
        return found

    def _annex_problems(self) -> list[FieldProblem]:
        """The Annex I elements with a controlled list, and the co-awarding bodies."""
        found: list[FieldProblem] = []
        for name, allowed in (("supervision", SUPERVISION), ("qf_ehea_cycle", QF_EHEA_CYCLES),
                              ("learning_setting", LEARNING_SETTINGS),
                              ("overall_result", OVERALL_RESULTS)):
            value = getattr(self, name)
            if value and value not in allowed:
                found.append(FieldProblem(name, f"must be one of {', '.join(allowed)}, "
                                                "or empty"))
        if len(self.region) > MAX_REGION:
            found.append(FieldProblem("region", f"at most {MAX_REGION} characters"))
        if len(self.co_awarding_bodies) > MAX_CO_AWARDING_BODIES:
            found.append(FieldProblem("co_awarding_bodies",
                                      f"at most {MAX_CO_AWARDING_BODIES} bodies"))
        seen: set[str] = set()
        for index, body in enumerate(self.co_awarding_bodies):
            found.extend(FieldProblem(f"co_awarding_bodies[{index}].{p.path}", p.message)
                         for p in body.problems())
            key = f"{body.country}:{body.legal_identifier.strip()}"
            if body.legal_identifier.strip() and key in seen:
                found.append(FieldProblem(f"co_awarding_bodies[{index}].legal_identifier",
                                          "this body is listed twice"))
            seen.add(key)
        if self.overall_result == "lowest_level" and self.outcomes:
            scales = {tuple(level.code for level in o.rubric.levels) for o in self.outcomes}
            if len(scales) > 1:
                found.append(FieldProblem(
                    "overall_result", "'lowest_level' needs every learning outcome to use the "
                                      "same level codes in the same order"))
        return found

    def _workload_problems(self) -> list[FieldProblem]:
        found: list[FieldProblem] = []
        if self.workload_hours <= 0:
            found.append(FieldProblem("workload_hours", "must be more than 0"))
        elif self.kind == "course" and self.workload_hours > COURSE_MAX_HOURS:
            found.append(FieldProblem(
                "workload_hours",
                f"a stand-alone micro-credential course is at most {COURSE_MAX_HOURS} hours "
                "(Art. 4/1-f); make it 'embedded' or shorten it"))
        if _decimal_places(self.workload_hours) > MAX_DECIMAL_PLACES:
            found.append(FieldProblem("workload_hours", "at most two decimal places"))
        if self.ects is not None:
            if self.ects < 0:
                found.append(FieldProblem("ects", "must not be negative"))
            if _decimal_places(self.ects) > MAX_DECIMAL_PLACES:
                found.append(FieldProblem("ects", "at most two decimal places"))
        return found

    def _outcome_problems(self) -> list[FieldProblem]:
        found: list[FieldProblem] = []
        if not self.outcomes and not self.requires:
            found.append(FieldProblem("outcomes", "a micro-credential needs at least one "
                                                  "learning outcome (or pathway components)"))
        elif self.outcomes and not any(outcome.required for outcome in self.outcomes):
            found.append(FieldProblem("outcomes", "at least one outcome must be required"))
        seen: set[str] = set()
        for index, outcome in enumerate(self.outcomes):
            found.extend(FieldProblem(f"outcomes[{index}].{p.path}", p.message)
                         for p in outcome.problems())
            if outcome.code in seen:
                found.append(FieldProblem(f"outcomes[{index}].code",
                                          f"duplicate outcome code {outcome.code!r}"))
            seen.add(outcome.code)
        return found

    def _requires_problems(self) -> list[FieldProblem]:
        found: list[FieldProblem] = []
        seen: set[str] = set()
        for index, code in enumerate(self.requires):
            if code == self.code:
                found.append(FieldProblem(f"requires[{index}]",
                                          "a micro-credential cannot require itself"))
            elif code in seen:
                found.append(FieldProblem(f"requires[{index}]", f"{code!r} is listed twice"))
            seen.add(code)
        return found


def missing_annex_elements(*, title: str, has_outcomes: bool, workload_hours: Decimal,
                           eqf_level: int, assessment_methods: tuple[str, ...],
                           participation_form: str, quality_assurance: str) -> list[str]:
    """The mandatory Annex I elements (Council Recommendation 2022/C 243/02) that are missing
    from these values, by name (ANNEX_MANDATORY order). The learner, the awarding body and its
    country, and the date come from the award and the institution, not the plan."""
    empty = {
        "title": not title.strip(),
        "learning outcomes": not has_outcomes,
        "notional workload": workload_hours <= 0,
        "EQF level": not 1 <= eqf_level <= 8,
        "type of assessment": not any(method.strip() for method in assessment_methods),
        "form of participation": participation_form not in PARTICIPATION_FORMS,
        "type of quality assurance": not quality_assurance.strip(),
    }
    return [name for name, _attribute in ANNEX_MANDATORY if empty[name]]


def annex_gaps(plan: DesignPlan) -> list[str]:
    """The mandatory Annex I elements the plan lacks (a plan saved before an element existed,
    a migrated plan, may lack one); a pathway's outcomes are its components'."""
    return missing_annex_elements(
        title=plan.title, has_outcomes=bool(plan.outcomes or plan.requires),
        workload_hours=plan.workload_hours, eqf_level=plan.eqf_level,
        assessment_methods=plan.assessment_methods,
        participation_form=plan.participation_form, quality_assurance=plan.quality_assurance)


def fills_gaps_only(old: DesignPlan, new: DesignPlan) -> bool:
    """True when `new` differs from `old` only by giving Annex I elements `old` left empty.

    Completing a migrated plan this way changes nothing a learner was assessed on, so the
    Office may do it on an approved version without making a new one.
    """
    fillable = {"participation_form", "quality_assurance", "assessment_methods",
                "prerequisites", "supervision", "qf_ehea_cycle", "learning_setting", "region",
                "co_awarding_bodies", "further_information", "overall_result"}
    for name in DesignPlan.__dataclass_fields__:
        before, after = getattr(old, name), getattr(new, name)
        if before == after:
            continue
        if name not in fillable or before not in ("", ()):
            return False
    return old != new


def overall_result(plan_mode: str, outcomes: tuple[tuple[str, tuple[str, ...], bool], ...],
                   reached: Mapping[str, str]) -> str | None:
    """The code of the overall result a plan defines, for a learner who passed.

    `outcomes` are (code, level codes lowest first, required). `pass_fail` gives "passed";
    `lowest_level` the lowest level reached over the required outcomes (None when a required
    outcome has no level, as for a pathway); no mode gives None.
    """
    if plan_mode == "pass_fail":
        return "passed"
    if plan_mode != "lowest_level":
        return None
    ranks: list[tuple[int, str]] = []
    for code, levels, required in outcomes:
        if not required:
            continue
        level = reached.get(code)
        if level not in levels:
            return None
        ranks.append((levels.index(level), level))
    return min(ranks)[1] if ranks else None


def _decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


# --- workflow -------------------------------------------------------------------------------


def next_status(status: str, action: str) -> str:
    """The status after `action`, or IllegalTransition naming what is allowed instead."""
    targets = TRANSITIONS.get(action)
    if targets is None:
        raise IllegalTransition(f"unknown action {action!r}")
    if status not in targets:
        allowed = [name for name, moves in TRANSITIONS.items() if status in moves]
        raise IllegalTransition(
            f"cannot {action} a micro-credential that is {status}; "
            f"allowed: {', '.join(allowed) or 'nothing (it is final)'}")
    return targets[status]


def available_actions(status: str) -> list[str]:
    """Actions a person may take from `status` (lapsing is the scheduler's, not a person's)."""
    return [name for name, moves in TRANSITIONS.items() if status in moves and name != "lapse"]


def add_years(moment: datetime, years: int) -> datetime:
    """The same calendar day `years` later; 29 February becomes 28 February."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


def revalidation_due(approved_at: datetime, requested: datetime | None = None) -> datetime:
    """When the next revalidation is due: at the latest three years on (Art. 4/1-ş).

    The Office may ask for an earlier date; a date later than the limit or not after the
    approval is refused.
    """
    latest = add_years(approved_at, REVALIDATION_YEARS)
    if requested is None:
        return latest
    if requested <= approved_at or requested > latest:
        raise ValidationFailed([FieldProblem(
            "revalidation_due",
            f"must be after the approval and no later than {latest.date().isoformat()} "
            "(three years)")])
    return requested


def is_overdue(status: str, due: datetime | None, now: datetime) -> bool:
    return status == "approved" and due is not None and due <= now


def due_within(due: datetime | None, now: datetime, days: int) -> bool:
    return due is not None and due <= now + timedelta(days=days)


# --- pathways -------------------------------------------------------------------------------


def find_cycle(requires: Mapping[str, set[str] | frozenset[str] | tuple[str, ...]],
               start: str | None = None) -> list[str] | None:
    """A requirement cycle as a closed walk (['A', 'B', 'A']), or None when there is none.

    With `start`, only cycles reachable from that node are looked for.
    """
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(requires.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in [start] if start is not None else sorted(requires):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def pathway_problems(code: str, requires: tuple[str, ...],
                     others: Mapping[str, tuple[str, ...] | set[str]]) -> list[FieldProblem]:
    """Problems with `code` requiring `requires`, given every other MC's requirements.

    Unknown codes and cycles (named, e.g. `A -> B -> A`) are reported on `requires`.
    """
    found: list[FieldProblem] = []
    for index, required in enumerate(requires):
        if required != code and required not in others:
            found.append(FieldProblem(f"requires[{index}]",
                                      f"no micro-credential with code {required!r}"))
    graph = {name: set(reqs) for name, reqs in others.items() if name != code}
    graph[code] = set(requires)
    cycle = find_cycle(graph, start=code)
    if cycle and code in cycle:
        found.append(FieldProblem("requires", "pathway cycle: " + " -> ".join(cycle)))
    return found


def is_pathway_complete(requires: Collection[Component], held: Set[Component]) -> bool:
    """A pathway is earned when every component is held (DESIGN.md "Pathway"); components are
    codes or ids, whichever the caller has."""
    return bool(requires) and set(requires) <= held


# --- offerings ------------------------------------------------------------------------------

REEVALUATION_POLICIES = ("instructor", "learner_request", "automatic")
MAX_REEVALUATION_WINDOW_DAYS = 365


@dataclass(frozen=True)
class OfferingSettings:
    """What an instructor sets for a placed micro-credential (DESIGN.md "Offering").

    `grade_item_ids` is for embedded MCs only: the part of the semester course's gradebook
    that covers the micro-credential (Art. 4/1-e).
    """

    window_closes_at: datetime | None
    reevaluation_policy: str
    reevaluation_window_days: int
    grade_item_ids: tuple[int, ...] = ()
    # Send each learner's result to a new column of the LMS gradebook (off until the
    # instructor chooses it: the LMS may count the column in the course total).
    grade_passback: bool = False

    def problems(self, *, kind: str, known_grade_items: set[int] | None = None
                 ) -> list[FieldProblem]:
        found: list[FieldProblem] = []
        if self.window_closes_at is not None and self.window_closes_at.tzinfo is None:
            found.append(FieldProblem("window_closes_at", "needs a time zone"))
        if self.reevaluation_policy not in REEVALUATION_POLICIES:
            found.append(FieldProblem("reevaluation_policy",
                                      f"must be one of {', '.join(REEVALUATION_POLICIES)}"))
        if not 1 <= self.reevaluation_window_days <= MAX_REEVALUATION_WINDOW_DAYS:
            found.append(FieldProblem(
                "reevaluation_window_days",
                f"must be between 1 and {MAX_REEVALUATION_WINDOW_DAYS} days"))
        if self.grade_item_ids and kind != "embedded":
            found.append(FieldProblem(
                "grade_item_ids",
                "only an embedded micro-credential uses a subset of the gradebook"))
        if len(set(self.grade_item_ids)) != len(self.grade_item_ids):
            found.append(FieldProblem("grade_item_ids", "an item is listed twice"))
        if known_grade_items is not None:
            found.extend(FieldProblem(f"grade_item_ids[{i}]", "not a gradebook item of this course")
                         for i, item in enumerate(self.grade_item_ids)
                         if item not in known_grade_items)
        return found
