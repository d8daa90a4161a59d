"""Analytic rubric of one learning outcome: ordered performance levels and a threshold.

Percents are `Decimal`, so a bound of 70 is met by exactly 70 and never by 69.99999.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from lti_tool.domain.errors import FieldProblem, ValidationFailed


@dataclass(frozen=True)
class PerformanceLevel:
    code: str
    label: str
    lower_bound: Decimal  # percent, 0..100
    descriptor: str = ""


@dataclass(frozen=True)
class Rubric:
    levels: tuple[PerformanceLevel, ...]
    threshold: str  # code of the lowest level that attains the outcome

    def problems(self) -> list[FieldProblem]:
        found: list[FieldProblem] = []
        if len(self.levels) < 2:
            found.append(FieldProblem("levels", "a rubric needs at least two levels"))
        codes = [level.code for level in self.levels]
        for index, level in enumerate(self.levels):
            if not level.code.strip():
                found.append(FieldProblem(f"levels[{index}].code", "must not be empty"))
            if codes.count(level.code) > 1 and codes.index(level.code) != index:
                found.append(FieldProblem(f"levels[{index}].code",
                                          f"duplicate level code {level.code!r}"))
            if not Decimal(0) <= level.lower_bound <= Decimal(100):
                found.append(FieldProblem(f"levels[{index}].lower_bound",
                                          "must be between 0 and 100"))
            if index > 0 and level.lower_bound <= self.levels[index - 1].lower_bound:
                found.append(FieldProblem(f"levels[{index}].lower_bound",
                                          "bounds must increase strictly"))
        if self.levels and self.levels[0].lower_bound != 0:
            found.append(FieldProblem("levels[0].lower_bound", "the first level must start at 0"))
        if self.threshold not in codes:
            found.append(FieldProblem("threshold", f"{self.threshold!r} is not one of the levels"))
        return found

    def validate(self) -> Rubric:
        found = self.problems()
        if found:
            raise ValidationFailed(found)
        return self

    def rank(self, code: str) -> int:
        for index, level in enumerate(self.levels):
            if level.code == code:
                return index
        raise KeyError(code)

    def level_for(self, percent: Decimal) -> PerformanceLevel:
        """Highest level whose lower bound is at or below `percent`."""
        chosen = self.levels[0]
        for level in self.levels:
            if level.lower_bound <= percent:
                chosen = level
        return chosen

    def attains(self, level_code: str) -> bool:
        return self.rank(level_code) >= self.rank(self.threshold)
