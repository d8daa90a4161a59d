"""Running the evaluation: marks from the store -> levels -> decisions -> evidence -> badges.

The use cases, each in the module that does that one job:

- `marks`: an offering's current mappings and the learners' marks on what they map;
- `mappings`: saving (a new version, then re-evaluating) and previewing a mapping;
- `decisions`: `OfferingRun` evaluates learners and moves their decisions, `evaluate_changed`
  is what the sync calls after it commits (the fast path per batch: plain-int evaluation,
  unchanged learners skipped by their inputs digest, snapshots written in bulk; transitions
  and re-evaluations through the general `step`);
- `transitions`: every decision change (domain rule, snapshot, evidence, badge, passback);
- `reevaluation`, `windows`, `prior_learning`, `tool_scores`, `review`: the one
  re-evaluation, closing windows, prior learning, rubric levels given in the tool, and flags
  raised by marks that change after a pass.

Entry points (sync, pages, CLI, scheduler) call these functions with a `Session` and
`Settings`; the caller commits. A pass calls badges' `issue_on_pass` in the same transaction,
so a learner is never `passed` without the archive (and the credential) that goes with it. The
archive is `lti_tool.grades.evidence` and grade passback `lti_tool.grades.passback`: a
decision queues its score there and `send_passbacks` sends it afterwards, so an unreachable
LMS never undoes a decision. This module gathers the use cases under one name.
"""

from __future__ import annotations

from lti_tool.grades.decisions import OfferingRun, evaluate_changed
from lti_tool.grades.mappings import (
    known_refs,
    outcomes_for,
    preview_mapping,
    save_mapping,
)
from lti_tool.grades.marks import current_mapping, mapping_sources
from lti_tool.grades.prior_learning import recognise_prior_learning
from lti_tool.grades.reevaluation import (
    grant_reevaluation,
    request_deadline,
    request_reevaluation,
    request_window,
)
from lti_tool.grades.review import resolve_flag
from lti_tool.grades.tool_scores import set_tool_rubric_score
from lti_tool.grades.transitions import RunSummary
from lti_tool.grades.windows import close_due_windows, finalize, run_scheduled

__all__ = [
    "OfferingRun", "RunSummary", "close_due_windows", "current_mapping", "evaluate_changed",
    "finalize", "grant_reevaluation", "known_refs", "mapping_sources", "outcomes_for",
    "preview_mapping", "recognise_prior_learning", "request_deadline", "request_reevaluation",
    "request_window", "resolve_flag", "run_scheduled", "save_mapping", "set_tool_rubric_score",
]
