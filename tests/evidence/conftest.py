"""An archive with three signed checkpoints, built by the real evaluation service."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from lti_tool.cli import main
from lti_tool.domain.evidence import body_hash, content_hash, link_hash
from lti_tool.grades import evaluation as ev
from lti_tool.runtime import Runtime
from lti_tool.store.models.evaluation import EvidenceCheckpoint, EvidenceRecord
from tests.badges.conftest import world  # noqa: F401  (a platform issuing real credentials)
from tests.evaluation.conftest import Course, seed_course


@dataclass
class Archive:
    course: Course
    runtime: Runtime

    @property
    def db(self) -> Session:
        return self.course.db

    def records(self) -> list[EvidenceRecord]:
        self.db.expire_all()
        return list(self.db.scalars(select(EvidenceRecord).order_by(EvidenceRecord.seq)))

    def checkpoints(self) -> list[EvidenceCheckpoint]:
        self.db.expire_all()
        return list(self.db.scalars(select(EvidenceCheckpoint)
                                    .order_by(EvidenceCheckpoint.number)))

    def sql(self, statement: str, **params: object) -> None:
        """What someone with the database's password does: plain SQL, committed."""
        self.db.execute(text(statement), params)
        self.db.commit()

    def rehash_from(self, seq: int) -> None:
        """Recompute every content hash and link hash from `seq` on, and the head, as an
        attacker without the signing key would after editing a payload."""
        rows = self.records()
        prev = next(r.hash for r in rows if r.seq == seq - 1) if seq > 1 else "0" * 64
        for row in rows:
            if row.seq < seq:
                continue
            content = content_hash(row.payload)
            digest = link_hash(prev, row.seq, body_hash(row.event, row.person_id,
                                                         row.offering_id, content))
            self.db.execute(text("UPDATE evidence_record SET content_hash = :c, prev_hash = :p,"
                                 " hash = :h WHERE id = :i"),
                            {"c": content, "p": prev, "h": digest, "i": row.id})
            prev = digest
        self.db.execute(text("UPDATE evidence_head SET last_hash = :h"), {"h": prev})
        self.db.commit()

    def verify(self, *args: str):
        return CliRunner().invoke(main, ["evidence", "verify", *args],
                                  obj={"runtime": self.runtime})


def issue_to(w, sub: str):
    """A real credential (signed by the badges area) for a new learner, and the learner."""
    from lti_tool.badges import issuance
    from tests.badges.conftest import PASSED_AT

    w.version = w.micro_credential()
    person = w.person(sub, f"{sub}@example.edu", sub.title())
    credential = issuance.issue_on_pass(w.db, w.settings, person_id=person.id,
                                        mc_version_id=w.version.id, offering_id=None,
                                        outcome_levels={"LO1": "proficient", "LO2": "exemplary"},
                                        passed_at=PASSED_AT)
    return person, credential


@pytest.fixture
def archive(runtime: Runtime, db: Session, settings) -> Archive:
    """Seq 1-3: three learners fail at finalize (checkpoint #1); then learner 0 and learner 1
    are granted their re-evaluation, each in its own transaction (checkpoints #2 and #3)."""
    course = seed_course(db, policy="instructor")
    ev.save_mapping(db, settings, course.offering.id, course.mapping(), course.by)
    ev.finalize(db, settings, course.offering.id, course.by)
    db.commit()
    for learner in course.learners[:2]:
        ev.grant_reevaluation(db, settings, course.offering.id, learner.id, course.by)
        db.commit()
    return Archive(course, runtime)
