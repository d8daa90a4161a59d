"""Survey rules: satisfaction questions and answers, employability follow-ups, feedback input.

Directive Art. 10/1 (satisfaction and employability in the annual report) and Art. 12/3-f (the
Office collects feedback from students, faculty, graduates, the business world and external
stakeholders). Pure: no framework, no I/O; the services in `lti_tool.reports` store what these
rules accept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from lti_tool.domain.errors import FieldProblem, ValidationFailed

LIKERT = "likert"
TEXT = "text"
QUESTION_KINDS = (LIKERT, TEXT)
LIKERT_VALUES = (1, 2, 3, 4, 5)
MAX_QUESTIONS = 10
MAX_QUESTION_CHARS = 300
MAX_FREE_TEXT = 2000
LANGUAGES = ("en", "tr")

# Why a learner is asked for their satisfaction (issue 17: on claiming; on the window's close).
TRIGGER_CLAIMED = "claimed"
TRIGGER_NOT_PASSED = "not_passed"

# Employability follow-ups (months after issuance) and their answers.
FOLLOW_UP_MONTHS = (6, 12)
EMPLOYABILITY_OUTCOMES = ("new_job", "promotion", "application", "recognised_credit", "not_yet")
NOT_YET = "not_yet"

# Stakeholder feedback (Art. 12/3-f).
STAKEHOLDER_ROLES = ("employer", "graduate", "partner", "faculty", "other")
FEEDBACK_THEMES = ("relevance", "skills_gap", "workload", "recognition", "assessment",
                   "delivery", "other")


@dataclass(frozen=True)
class Question:
    """One survey item; `text` by language (English required, Turkish may be empty)."""

    code: str
    kind: str
    text: Mapping[str, str]

    def text_in(self, lang: str) -> str:
        return self.text.get(lang) or self.text.get("en", "")


DEFAULT_QUESTIONS = (
    Question("q1", LIKERT, {"en": "The learning outcomes were clear to me from the start.",
                            "tr": "Öğrenme çıktıları baştan itibaren benim için açıktı."}),
    Question("q2", LIKERT, {"en": "The assessment measured what the learning outcomes promised.",
                            "tr": "Değerlendirme, öğrenme çıktılarının vaat ettiğini ölçtü."}),
    Question("q3", LIKERT, {"en": "The workload matched what was announced.",
                            "tr": "İş yükü duyurulanla uyumluydu."}),
    Question("q4", LIKERT, {"en": "I would recommend this micro-credential to others.",
                            "tr": "Bu mikro yeterliliği başkalarına tavsiye ederim."}),
    Question("comment", TEXT, {"en": "What should we improve?",
                               "tr": "Neyi geliştirmeliyiz?"}),
)


def question_problems(questions: Sequence[Question]) -> list[FieldProblem]:
    """Every problem of a question set: 1-10 items, unique codes, English text for each,
    bounded lengths, and exactly one free-text item (issue 17: Likert items + one free text)."""
    problems: list[FieldProblem] = []
    if not 2 <= len(questions) <= MAX_QUESTIONS:
        problems.append(FieldProblem("questions",
                                     f"give between 2 and {MAX_QUESTIONS} questions"))
    seen: set[str] = set()
    for index, question in enumerate(questions):
        where = f"questions[{index}]"
        if not question.code or not question.code.isidentifier() or len(question.code) > 20:
            problems.append(FieldProblem(where + ".code", "use a short code of letters, "
                                         "digits and _"))
        elif question.code in seen:
            problems.append(FieldProblem(where + ".code", "codes must be unique"))
        seen.add(question.code)
        if question.kind not in QUESTION_KINDS:
            problems.append(FieldProblem(where + ".kind", "must be likert or text"))
        if not (question.text.get("en") or "").strip():
            problems.append(FieldProblem(where + ".text.en", "the English text is required"))
        for lang, text in question.text.items():
            if lang not in LANGUAGES:
                problems.append(FieldProblem(where + f".text.{lang}", "unknown language"))
            elif len(text) > MAX_QUESTION_CHARS:
                problems.append(FieldProblem(where + f".text.{lang}",
                                             f"at most {MAX_QUESTION_CHARS} characters"))
    texts = sum(1 for q in questions if q.kind == TEXT)
    if texts != 1:
        problems.append(FieldProblem("questions", "give exactly one free-text question"))
    if not any(q.kind == LIKERT for q in questions):
        problems.append(FieldProblem("questions", "give at least one rating (Likert) question"))
    return problems


@dataclass(frozen=True)
class SatisfactionAnswer:
    """A learner's answer: a rating 1-5 per Likert item they answered, and free text."""

    ratings: Mapping[str, int]
    free_text: str


def parse_satisfaction(questions: Sequence[Question], form: Mapping[str, str]
                       ) -> SatisfactionAnswer:
    """Read an untrusted form: every item is optional; a given rating must be 1-5.

    Raises `ValidationFailed` with every problem; unknown fields are ignored.
    """
    problems: list[FieldProblem] = []
    ratings: dict[str, int] = {}
    free_text = ""
    for question in questions:
        raw = (form.get(question.code) or "").strip()
        if not raw:
            continue
        if question.kind == TEXT:
            if len(raw) > MAX_FREE_TEXT:
                problems.append(FieldProblem(question.code,
                                             f"at most {MAX_FREE_TEXT} characters"))
            free_text = raw[:MAX_FREE_TEXT]
            continue
        if raw not in {str(v) for v in LIKERT_VALUES}:
            problems.append(FieldProblem(question.code, "choose a rating from 1 to 5"))
            continue
        ratings[question.code] = int(raw)
    if problems:
        raise ValidationFailed(problems)
    return SatisfactionAnswer(ratings, free_text)


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later (the month's last day when it is shorter)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    days = (31, 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28,
            31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]
    return moment.replace(year=year, month=month, day=min(moment.day, days))


def follow_up_due(issued_at: datetime, now: datetime) -> int | None:
    """Which follow-up (6 or 12 months) is due for a credential issued at `issued_at`.

    Only the latest one whose time has come: after 12 months the 6-month question is no longer
    asked (its answer would describe the wrong moment). None before 6 months.
    """
    due = None
    for months in FOLLOW_UP_MONTHS:
        if add_months(issued_at, months) <= now:
            due = months
    return due


def parse_employability(form_values: Sequence[str]) -> tuple[str, ...]:
    """The chosen uses of the credential; `not_yet` excludes every other answer."""
    chosen = tuple(dict.fromkeys(v for v in form_values if v))
    unknown = [v for v in chosen if v not in EMPLOYABILITY_OUTCOMES]
    if unknown or not chosen:
        raise ValidationFailed([FieldProblem("outcome", "choose at least one of the answers")])
    if NOT_YET in chosen and len(chosen) > 1:
        raise ValidationFailed([FieldProblem(
            "outcome", "'not yet' cannot be combined with another answer")])
    return tuple(v for v in EMPLOYABILITY_OUTCOMES if v in chosen)


@dataclass(frozen=True)
class StakeholderFeedback:
    role: str
    themes: tuple[str, ...]
    rating: int | None
    text: str


def parse_stakeholder(role: str, themes: Sequence[str], rating: str, text: str
                      ) -> StakeholderFeedback:
    """Bounded, closed-vocabulary input from the public feedback link (no login)."""
    problems: list[FieldProblem] = []
    if role not in STAKEHOLDER_ROLES:
        problems.append(FieldProblem("role", "choose who you are"))
    chosen = tuple(dict.fromkeys(themes))
    if not chosen or len(chosen) > len(FEEDBACK_THEMES) or any(
            t not in FEEDBACK_THEMES for t in chosen):
        problems.append(FieldProblem("themes", "choose at least one theme"))
    value: int | None = None
    if rating:
        if rating not in {str(v) for v in LIKERT_VALUES}:
            problems.append(FieldProblem("rating", "choose a rating from 1 to 5"))
        else:
            value = int(rating)
    text = text.strip()
    if len(text) > MAX_FREE_TEXT:
        problems.append(FieldProblem("text", f"at most {MAX_FREE_TEXT} characters"))
    if problems:
        raise ValidationFailed(problems)
    return StakeholderFeedback(role, tuple(t for t in FEEDBACK_THEMES if t in chosen), value,
                               text)
