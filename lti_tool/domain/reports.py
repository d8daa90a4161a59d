"""The figures of the Annual Quality Assurance Report (directive Art. 10/1), as pure functions.

Inputs are plain facts the read service (`lti_tool.reports.service`) takes from the store: one
per micro-credential, per learner and offering, per credential, per survey answer, per
follow-up and per stakeholder answer. Outputs are JSON-ready dictionaries, per micro-credential
and overall, organised by the four dimensions of the quality model.

Small groups are protected (issue 17): every figure computed from survey answers (satisfaction,
employability, stakeholder feedback) that rests on fewer than `min_cell` answers is replaced by
`SUPPRESSED`. Suppression is made safe against arithmetic: within a group whose total is shown
(the micro-credentials adding up to the overall figure), further cells are suppressed until the
suppressed cells together hold 0 or at least `min_cell` answers, so subtracting shown cells from
a shown total never reveals a small group; a year-on-year difference is suppressed whenever
either year's figure is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any, TypeVar

from lti_tool.domain.surveys import EMPLOYABILITY_OUTCOMES, FEEDBACK_THEMES, LIKERT_VALUES

DEFAULT_MIN_CELL = 5

# A section or table of figures: JSON-ready, keyed by the names the report shows.
Figures = dict[str, Any]
Cell = TypeVar("Cell", bound=Hashable)

# The four dimensions of quality-model.md and the sections of the report in each.
DIMENSIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("policy_strategy", ("catalogue", "revalidation")),
    ("instructional_design", ("design", "participation")),
    ("assessment_certification", ("success", "reevaluation", "credentials")),
    ("sustainability_engagement", ("satisfaction", "employability", "stakeholders",
                                   "reflections", "actions", "year_on_year")),
)

# Decision statuses (lti_tool.domain.decisions), repeated as plain strings for the counts.
PASSED, FAILED, FAILED_FINAL = "passed", "failed", "failed_final"
IN_PROGRESS, REEVALUATION_GRANTED = "in_progress", "reevaluation_granted"
PRIOR_LEARNING = "prior_learning"
KINDS = ("course", "embedded")
FORMS = ("online", "in_person", "blended", "")


class Suppressed:
    """A figure withheld because it rests on fewer answers than the threshold."""

    _instance: Suppressed | None = None

    def __new__(cls) -> Suppressed:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SUPPRESSED"


SUPPRESSED = Suppressed()


def is_suppressed(value: object) -> bool:
    return value is SUPPRESSED


# --- Facts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class McFacts:
    mc_id: int
    code: str
    title: str
    kind: str
    participation_form: str
    status: str
    eqf_level: int
    ects: str | None
    workload_hours: str
    pathway: bool
    offerings: int
    outcome_codes: tuple[str, ...]
    approved_in_year: bool = False
    revalidation_due_in_year: bool = False
    revalidated_in_year: bool = False


@dataclass(frozen=True)
class LearnerFact:
    """One learner in one offering of the year: enrolled, and their decision if any."""

    mc_id: int
    status: str | None  # None: enrolled, no decision yet
    passed_via: str | None = None
    reevaluations_used: int = 0
    outcomes: Mapping[str, bool | None] = field(default_factory=dict)  # None: not assessed

    @cached_property
    def assessed(self) -> bool:
        if self.status is None:
            return False
        return self.status != IN_PROGRESS or any(v is not None for v in self.outcomes.values())


@dataclass(frozen=True)
class CredentialFact:
    mc_id: int
    issued_in_year: bool
    accepted: bool
    shared: bool
    revoked_in_year: bool


@dataclass(frozen=True)
class RatingFact:
    mc_id: int
    skipped: bool
    ratings: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FollowUpFact:
    mc_id: int
    months: int
    outcomes: tuple[str, ...] | None  # None: not answered


@dataclass(frozen=True)
class FeedbackFact:
    mc_id: int
    role: str
    themes: tuple[str, ...]
    rating: int | None


@dataclass(frozen=True)
class YearFacts:
    year: int
    mcs: Sequence[McFacts]
    learners: Sequence[LearnerFact] = ()
    credentials: Sequence[CredentialFact] = ()
    ratings: Sequence[RatingFact] = ()
    follow_ups: Sequence[FollowUpFact] = ()
    feedback: Sequence[FeedbackFact] = ()
    likert_codes: tuple[str, ...] = ()


# --- Arithmetic ----------------------------------------------------------------------------


def rate(part: int, whole: int) -> float | None:
    """part / whole in 0-1, rounded to 4 places; None when there is nothing to divide by."""
    if whole <= 0:
        return None
    return round(min(max(part, 0), whole) / whole, 4)


def mean(values: Iterable[int]) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 2) if values else None


def suppression_plan(cells: Mapping[Cell, int], min_cell: int) -> tuple[set[Cell], bool]:
    """Which cells of a group (and whether its total) to withhold.

    Primary: every cell with 1..min_cell-1 answers. Secondary: while the withheld cells hold
    1..min_cell-1 answers together (subtracting the shown cells from the total would reveal
    them), also withhold the smallest shown non-empty cell. The total is withheld when it holds
    1..min_cell-1 answers itself.
    """
    total = sum(cells.values())
    hidden = {key for key, n in cells.items() if 0 < n < min_cell}
    residual = sum(cells[key] for key in hidden)
    shown = sorted((n, str(key), key) for key, n in cells.items() if n > 0 and key not in hidden)
    while 0 < residual < min_cell and shown:
        n, _name, key = shown.pop(0)
        hidden.add(key)
        residual += n
    return hidden, 0 < total < min_cell


# --- Sections ------------------------------------------------------------------------------


def _participation(learners: Sequence[LearnerFact], offerings: int) -> Figures:
    return {"offerings": offerings, "enrolled": len(learners),
            "assessed": sum(1 for f in learners if f.assessed)}


def _success(learners: Sequence[LearnerFact], outcome_codes: Sequence[str]) -> Figures:
    assessed = [f for f in learners if f.assessed]
    passed = [f for f in assessed if f.status == PASSED]
    by_prior = sum(1 for f in passed if f.passed_via == PRIOR_LEARNING)
    after_reeval = sum(1 for f in passed
                       if f.passed_via != PRIOR_LEARNING and f.reevaluations_used > 0)
    failed = sum(1 for f in assessed if f.status in (FAILED, FAILED_FINAL))
    outcomes = {}
    for code in outcome_codes:
        marked = [f.outcomes[code] for f in assessed if f.outcomes.get(code) is not None]
        attained = sum(1 for value in marked if value)
        outcomes[code] = {"assessed": len(marked), "attained": attained,
                          "rate": rate(attained, len(marked))}
    return {
        "assessed": len(assessed),
        "passed": len(passed),
        "passed_first_attempt": len(passed) - by_prior - after_reeval,
        "passed_after_reevaluation": after_reeval,
        "passed_by_prior_learning": by_prior,
        "failed": failed,
        "still_open": len(assessed) - len(passed) - failed,
        "pass_rate": rate(len(passed), len(assessed)),
        "outcomes": outcomes,
    }


def _reevaluation(learners: Sequence[LearnerFact]) -> Figures:
    granted = [f for f in learners if f.reevaluations_used > 0]
    passed = sum(1 for f in granted if f.status == PASSED)
    failed = sum(1 for f in granted if f.status == FAILED_FINAL)
    return {"granted": len(granted), "passed": passed, "failed_final": failed,
            "open": len(granted) - passed - failed, "success_rate": rate(passed, len(granted))}


def _credentials(credentials: Sequence[CredentialFact]) -> Figures:
    issued = [c for c in credentials if c.issued_in_year]
    return {"issued": len(issued), "accepted": sum(1 for c in issued if c.accepted),
            "shared": sum(1 for c in issued if c.shared),
            "revoked": sum(1 for c in credentials if c.revoked_in_year),
            "acceptance_rate": rate(sum(1 for c in issued if c.accepted), len(issued))}


def _satisfaction(ratings: Sequence[RatingFact], likert_codes: Sequence[str]) -> Figures:
    answered = [r for r in ratings if not r.skipped]
    items = {}
    for code in likert_codes:
        values = [r.ratings[code] for r in answered if code in r.ratings]
        counts = Counter(values)
        items[code] = {"n": len(values), "mean": mean(values),
                       "distribution": {str(v): counts.get(v, 0) for v in LIKERT_VALUES}}
    return {"responses": len(answered), "skipped": len(ratings) - len(answered), "items": items}


def _employability(follow_ups: Sequence[FollowUpFact]) -> Figures:
    answered = [f for f in follow_ups if f.outcomes is not None]
    counts = Counter(o for f in answered for o in (f.outcomes or ()))
    used = sum(1 for f in answered if f.outcomes and "not_yet" not in f.outcomes)
    return {"asked": len(follow_ups), "answered": len(answered),
            "response_rate": rate(len(answered), len(follow_ups)),
            "used_rate": rate(used, len(answered)),
            "outcomes": {o: counts.get(o, 0) for o in EMPLOYABILITY_OUTCOMES}}


def _stakeholders(feedback: Sequence[FeedbackFact]) -> Figures:
    themes = Counter(t for f in feedback for t in f.themes)
    return {"n": len(feedback),
            "mean_rating": mean(f.rating for f in feedback if f.rating is not None),
            "themes": {t: themes.get(t, 0) for t in FEEDBACK_THEMES}}


def _by(items: Iterable[Any], key: Callable[[Any], int]) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = {}
    for item in items:
        grouped.setdefault(key(item), []).append(item)
    return grouped


def _mc_figures(mc: McFacts, facts: YearFacts, learners: list[LearnerFact],
                credentials: list[CredentialFact], ratings: list[RatingFact],
                follow_ups: list[FollowUpFact], feedback: list[FeedbackFact]) -> Figures:
    return {
        "mc": {"id": mc.mc_id, "code": mc.code, "title": mc.title, "kind": mc.kind,
               "participation_form": mc.participation_form, "status": mc.status,
               "eqf_level": mc.eqf_level, "ects": mc.ects, "workload_hours": mc.workload_hours,
               "pathway": mc.pathway},
        "revalidation": {"due": int(mc.revalidation_due_in_year),
                         "done": int(mc.revalidated_in_year)},
        "participation": _participation(learners, mc.offerings),
        "success": _success(learners, mc.outcome_codes),
        "reevaluation": _reevaluation(learners),
        "credentials": _credentials(credentials),
        "satisfaction": _satisfaction(ratings, facts.likert_codes),
        "employability": _employability(follow_ups),
        "stakeholders": _stakeholders(feedback),
    }


def _overall(facts: YearFacts) -> Figures:
    mcs = facts.mcs
    kinds = {m.mc_id: m.kind for m in mcs}
    forms = {m.mc_id: m.participation_form for m in mcs}

    def split(mapping: Mapping[int, str], names: Sequence[str]) -> Figures:
        counts = {name: [0, 0, 0] for name in names}
        for f in facts.learners:
            row = counts.get(mapping.get(f.mc_id, ""))
            if row is None:
                continue
            row[0] += 1
            if f.assessed:
                row[1] += 1
                row[2] += f.status == PASSED
        return {name or "unspecified": {"enrolled": e, "assessed": a, "passed": p}
                for name, (e, a, p) in counts.items() if name or e}

    status_counts = Counter(m.status for m in mcs)
    participation = _participation(facts.learners, sum(m.offerings for m in mcs))
    participation["by_kind"] = split(kinds, KINDS)
    participation["by_form"] = split(forms, FORMS)
    return {
        "catalogue": {"micro_credentials": len(mcs),
                      "by_status": dict(sorted(status_counts.items())),
                      "approved_in_year": sum(1 for m in mcs if m.approved_in_year),
                      "pathways": sum(1 for m in mcs if m.pathway)},
        "design": {"by_kind": dict(sorted(Counter(m.kind for m in mcs).items())),
                   "by_form": dict(sorted(Counter(m.participation_form or "unspecified"
                                                  for m in mcs).items())),
                   "by_eqf_level": {str(k): v for k, v in
                                    sorted(Counter(m.eqf_level for m in mcs).items())}},
        "revalidation": {"due": sum(1 for m in mcs if m.revalidation_due_in_year),
                         "done": sum(1 for m in mcs if m.revalidated_in_year)},
        "participation": participation,
        "success": _success(facts.learners, ()),
        "reevaluation": _reevaluation(facts.learners),
        "credentials": _credentials(facts.credentials),
        "satisfaction": _satisfaction(facts.ratings, facts.likert_codes),
        "employability": _employability(facts.follow_ups),
        "stakeholders": _stakeholders(facts.feedback),
    }


# --- Suppression of answer-based sections -------------------------------------------------

def _blank_satisfaction_item(item: Figures) -> None:
    item["n"] = item["mean"] = SUPPRESSED
    item["distribution"] = {k: SUPPRESSED for k in item["distribution"]}


def _blank_likert_item(code: str, figures: Figures) -> None:
    _blank_satisfaction_item(figures["satisfaction"]["items"][code])


def _blank_employability(section: Figures) -> None:
    for key in ("answered", "response_rate", "used_rate"):
        section[key] = SUPPRESSED
    section["outcomes"] = {k: SUPPRESSED for k in section["outcomes"]}


def _blank_stakeholders(section: Figures) -> None:
    section["n"] = section["mean_rating"] = SUPPRESSED
    section["themes"] = {k: SUPPRESSED for k in section["themes"]}


def _apply_group(per_mc: dict[int, Figures], overall: Figures, sizes: dict[int, int],
                 min_cell: int, blank_mc: Callable[[Figures], None],
                 blank_all: Callable[[Figures], None]) -> None:
    hidden, total_hidden = suppression_plan(sizes, min_cell)
    for mc_id in hidden:
        blank_mc(per_mc[mc_id])
    if total_hidden:
        blank_all(overall)


def suppress(per_mc: dict[int, Figures], overall: Figures, likert_codes: Sequence[str],
             min_cell: int) -> None:
    """Withhold small answer groups in place (see the module docstring)."""
    for code in likert_codes:
        _apply_group(per_mc, overall,
                     {m: f["satisfaction"]["items"][code]["n"] for m, f in per_mc.items()},
                     min_cell,
                     partial(_blank_likert_item, code), partial(_blank_likert_item, code))
    responses = {m: f["satisfaction"]["responses"] for m, f in per_mc.items()}
    hidden, total_hidden = suppression_plan(responses, min_cell)
    for mc_id in hidden:
        per_mc[mc_id]["satisfaction"]["responses"] = SUPPRESSED
    if total_hidden:
        overall["satisfaction"]["responses"] = SUPPRESSED
    _apply_group(per_mc, overall, {m: f["employability"]["answered"] for m, f in per_mc.items()},
                 min_cell, lambda f: _blank_employability(f["employability"]),
                 lambda o: _blank_employability(o["employability"]))
    _apply_group(per_mc, overall, {m: f["stakeholders"]["n"] for m, f in per_mc.items()},
                 min_cell, lambda f: _blank_stakeholders(f["stakeholders"]),
                 lambda o: _blank_stakeholders(o["stakeholders"]))


# --- The year ------------------------------------------------------------------------------


def year_figures(facts: YearFacts, min_cell: int = DEFAULT_MIN_CELL) -> Figures:
    """Every figure of one calendar year: `per_mc` (by mc id) and `overall`, suppressed."""
    learners = _by(facts.learners, lambda f: f.mc_id)
    credentials = _by(facts.credentials, lambda f: f.mc_id)
    ratings = _by(facts.ratings, lambda f: f.mc_id)
    follow_ups = _by(facts.follow_ups, lambda f: f.mc_id)
    feedback = _by(facts.feedback, lambda f: f.mc_id)
    per_mc = {
        mc.mc_id: _mc_figures(mc, facts, learners.get(mc.mc_id, []),
                              credentials.get(mc.mc_id, []), ratings.get(mc.mc_id, []),
                              follow_ups.get(mc.mc_id, []), feedback.get(mc.mc_id, []))
        for mc in sorted(facts.mcs, key=lambda m: m.code.lower())
    }
    overall = _overall(facts)
    suppress(per_mc, overall, facts.likert_codes, max(1, min_cell))
    return {"year": facts.year, "min_cell": min_cell, "per_mc": per_mc, "overall": overall}


# Figures compared with the year before: (section, key).
YEAR_ON_YEAR_KEYS = (
    ("participation", "enrolled"),
    ("participation", "assessed"),
    ("success", "passed"),
    ("success", "pass_rate"),
    ("reevaluation", "granted"),
    ("credentials", "issued"),
    ("satisfaction", "responses"),
    ("employability", "response_rate"),
    ("stakeholders", "n"),
)


def difference(current: object, previous: object) -> object:
    """current - previous; SUPPRESSED when either is; None when either is unknown."""
    if is_suppressed(current) or is_suppressed(previous):
        return SUPPRESSED
    if current is None or previous is None:
        return None
    value = current - previous  # type: ignore[operator]
    return round(value, 4) if isinstance(value, float) else value


def _changes(now: Figures, before: Figures | None) -> Figures:
    result = {}
    for section, key in YEAR_ON_YEAR_KEYS:
        current = now[section][key]
        previous = before[section][key] if before else None
        result[f"{section}.{key}"] = {"current": current, "previous": previous,
                                      "change": difference(current, previous)}
    return result


def year_on_year(current: Figures, previous: Figures) -> Figures:
    """The key figures of `current` beside `previous` (both from `year_figures`), per MC (by
    code, as ids of new versions change) and overall."""
    before_by_code = {f["mc"]["code"]: f for f in previous["per_mc"].values()}
    return {
        "previous_year": previous["year"],
        "overall": _changes(current["overall"], previous["overall"]),
        "per_mc": {mc_id: _changes(f, before_by_code.get(f["mc"]["code"]))
                   for mc_id, f in current["per_mc"].items()},
    }


def to_jsonable(value: Any, marker: Any) -> Any:
    """Replace SUPPRESSED by `marker` everywhere (JSON has no sentinel)."""
    if is_suppressed(value):
        return marker
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, marker) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v, marker) for v in value]
    return value
