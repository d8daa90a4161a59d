"""Recognition of prior learning: an assessor's evidence per LO makes the learner pass.

The check is the domain's (`lti_tool.domain.prior_learning.recognise`); this module records
the decision (and so the badge) with the evidence in the archive.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from lti_tool.domain import decisions as flow
from lti_tool.domain.actors import Actor
from lti_tool.domain.prior_learning import recognise
from lti_tool.errors import BadRequest
from lti_tool.grades.decisions import OfferingRun, get_offering
from lti_tool.settings import Settings
from lti_tool.store.models.evaluation import Decision


def recognise_prior_learning(db: Session, settings: Settings, offering_id: int, person_id: int,
                             actor: Actor, evidence: Mapping[str, Mapping[str, str]], *,
                             now: datetime | None = None) -> Decision:
    """An assessor records prior-learning evidence per LO; the learner passes (DESIGN).

    `evidence` maps each LO code to {"evidence": text, "level": optional level code}; every
    required LO needs evidence, and a level given must attain the LO's threshold.
    """
    offering = get_offering(db, offering_id)
    run = OfferingRun.of(db, settings, offering, now=now)
    decision = run.decisions_for([person_id])[person_id]
    evaluation, problems = recognise(run.outcomes, evidence)
    if problems:
        raise BadRequest("Prior learning cannot be recognised: " + "; ".join(problems),
                         details={"problems": problems})
    run.decide(decision, flow.RECOGNISE_PRIOR_LEARNING, evaluation, None, actor,
               decision.inputs_digest,
               details={"prior_learning": {c: dict(e) for c, e in evidence.items()}})
    return decision
