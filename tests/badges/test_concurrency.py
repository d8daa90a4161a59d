"""Eight evaluations of one learner passing at once give exactly one credential.

Each thread has its own session and transaction, as concurrent workers would; the unique
constraint on (person_id, mc_version_id) decides. Runs on SQLite (threads) and PostgreSQL.
"""

from __future__ import annotations

import json
import threading

import pytest

from lti_tool.badges import issuance
from lti_tool.badges.signing import Signer
from lti_tool.store.models.badges import Credential
from tests.badges.conftest import PASSED_AT, assert_schema_valid

WORKERS = 8


@pytest.mark.postgres
def test_concurrent_passes_issue_exactly_one_credential(world, runtime) -> None:
    person, version = world.person(), world.micro_credential()
    Signer.load(world.db, world.settings,
                world.platform.institution)  # keys exist before the race, as after `serve`
    world.db.commit()
    barrier = threading.Barrier(WORKERS)
    returned: list[int] = []
    errors: list[BaseException] = []

    def evaluate() -> None:
        session = runtime.sessions()
        try:
            barrier.wait(timeout=30)
            credential = issuance.issue_on_pass(
                session, runtime.settings, person_id=person.id, mc_version_id=version.id,
                offering_id=None, outcome_levels={"LO1": "proficient", "LO2": "proficient"},
                passed_at=PASSED_AT)
            session.commit()
            returned.append(credential.id)
        except BaseException as exc:  # reported below with the thread's error
            session.rollback()
            errors.append(exc)
        finally:
            session.close()

    threads = [threading.Thread(target=evaluate) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    world.db.expire_all()
    rows = world.db.query(Credential).filter_by(person_id=person.id).all()
    assert len(rows) == 1
    assert returned == [rows[0].id] * WORKERS
    assert_schema_valid(json.loads(rows[0].document))
