"""Hypothesis strategies for valid Design Plans, outcomes and rubrics."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from lti_tool.domain.catalogue import (
    LANGUAGES,
    LEARNING_SETTINGS,
    OUTCOME_DOMAINS,
    PARTICIPATION_FORMS,
    QF_EHEA_CYCLES,
    SUPERVISION,
    AwardingBody,
    DesignPlan,
    LearningOutcome,
)
from lti_tool.domain.rubric import PerformanceLevel, Rubric

ALPHABET = st.characters(codec="utf-8", categories=("L", "N", "P", "Zs"),
                         exclude_characters="\x85\u2028\u2029")
text = st.text(ALPHABET, min_size=1, max_size=30).map(str.strip).filter(bool)
long_text = st.lists(text, min_size=1, max_size=3).map("\n".join)
isced_f_codes = st.from_regex(r"(0[0-9]|10|99)([0-9]{1,2})?", fullmatch=True)
codes = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{1,12}", fullmatch=True)


def hundredths(low: int, high: int) -> st.SearchStrategy[Decimal]:
    """Decimals with at most two places in [low, high] (in units)."""
    return st.integers(low * 100, high * 100).map(lambda n: Decimal(n) / 100)


@st.composite
def rubrics(draw, min_levels: int = 2, max_levels: int = 5) -> Rubric:
    size = draw(st.integers(min_levels, max_levels))
    inner = sorted(draw(st.sets(st.integers(1, 10000), min_size=size - 1, max_size=size - 1)))
    bounds = [Decimal(0)] + [Decimal(n) / 100 for n in inner]
    level_codes = draw(st.lists(codes, min_size=size, max_size=size, unique=True))
    levels = tuple(PerformanceLevel(code=c, label=draw(text), lower_bound=b,
                                    descriptor=draw(st.one_of(st.just(""), text)))
                   for c, b in zip(level_codes, bounds, strict=True))
    return Rubric(levels=levels, threshold=draw(st.sampled_from(level_codes)))


@st.composite
def outcome_lists(draw) -> tuple[LearningOutcome, ...]:
    outcome_codes = draw(st.lists(codes, min_size=1, max_size=4, unique=True))
    outcomes = [LearningOutcome(code=c, statement=draw(long_text),
                                domain=draw(st.sampled_from(OUTCOME_DOMAINS)),
                                rubric=draw(rubrics()), required=draw(st.booleans()))
                for c in outcome_codes]
    outcomes[0] = LearningOutcome(**{**outcomes[0].__dict__, "required": True})
    return tuple(outcomes)


countries = st.sampled_from(("TR", "DE", "FR", "IE", "NL", "IT", "ES", "PL", "BE"))
optional = lambda strategy: st.one_of(st.just(""), strategy)  # noqa: E731


@st.composite
def awarding_bodies(draw) -> tuple[AwardingBody, ...]:
    identifiers = draw(st.lists(st.from_regex(r"[A-Z0-9]{4,14}", fullmatch=True), max_size=3,
                                unique=True))
    return tuple(AwardingBody(name=draw(text), country=draw(countries), legal_identifier=i,
                              url=draw(st.sampled_from(("", "https://partner.example.org"))))
                 for i in identifiers)


@st.composite
def shared_scale(draw, outcomes: tuple[LearningOutcome, ...]) -> tuple[LearningOutcome, ...]:
    """The same outcomes, all on the first one's level scale (what `lowest_level` needs)."""
    rubric = outcomes[0].rubric
    return tuple(LearningOutcome(**{**o.__dict__, "rubric": Rubric(
        levels=rubric.levels,
        threshold=draw(st.sampled_from([lv.code for lv in rubric.levels])))})
        for o in outcomes)


@st.composite
def plans(draw) -> DesignPlan:
    kind = draw(st.sampled_from(("course", "embedded")))
    workload = draw(hundredths(1, 30) if kind == "course" else hundredths(1, 600))
    outcomes = draw(outcome_lists())
    overall = draw(st.sampled_from(("", "pass_fail", "lowest_level")))
    if overall == "lowest_level":
        outcomes = draw(shared_scale(outcomes))
    return DesignPlan(
        code=draw(codes), title=draw(text), description=draw(long_text), kind=kind,
        language=draw(st.sampled_from(LANGUAGES)), purpose=draw(long_text),
        target_group=draw(text), tqf_level=draw(st.integers(1, 8)),
        eqf_level=draw(st.integers(1, 8)), workload_hours=workload,
        ects=draw(st.one_of(st.none(), hundredths(0, 30))),
        teaching_methods=tuple(draw(st.lists(text, min_size=1, max_size=3))),
        assessment_methods=tuple(draw(st.lists(text, min_size=1, max_size=3))),
        content_plan=draw(long_text), quality_assurance=draw(long_text),
        stackability=draw(st.one_of(st.just(""), text)),
        recognition=draw(st.one_of(st.just(""), text)),
        image=draw(st.sampled_from(("", "https://www.example.edu/badge.png"))),
        field_of_study=draw(text),
        isced_f_code=draw(st.one_of(st.just(""), isced_f_codes)),
        participation_form=draw(st.sampled_from(PARTICIPATION_FORMS)),
        outcomes=outcomes,
        prerequisites=draw(optional(long_text)), supervision=draw(optional(
            st.sampled_from(SUPERVISION))),
        qf_ehea_cycle=draw(optional(st.sampled_from(QF_EHEA_CYCLES))),
        learning_setting=draw(optional(st.sampled_from(LEARNING_SETTINGS))),
        region=draw(optional(text)), co_awarding_bodies=draw(awarding_bodies()),
        further_information=draw(optional(long_text)), overall_result=overall,
    )

# Plans are big objects; on a loaded CI machine one example can exceed hypothesis' default
# 200 ms deadline, which would make these tests flaky rather than find anything.
relaxed = settings(deadline=None, max_examples=60,
                   suppress_health_check=[HealthCheck.too_slow])
