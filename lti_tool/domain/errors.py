"""Domain errors: plain exceptions the entry points translate (validation 400/422, rules 409)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One validation problem, located by a field path such as `outcomes[2].rubric.threshold`."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class DomainError(Exception):
    """A rule of the domain was broken."""


class ValidationFailed(DomainError):
    """Every problem found, not just the first."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    def prefixed(self, prefix: str) -> ValidationFailed:
        return ValidationFailed(
            [FieldProblem(f"{prefix}.{p.path}" if p.path else prefix, p.message)
             for p in self.problems]
        )


class IllegalTransition(DomainError):
    """A state change the workflow does not allow (the web layer answers 409)."""
