"""The demo seed step leaves one learner holding a valid credential, and is idempotent."""

from __future__ import annotations

import json

from lti_tool.badges.verify import Verifier
from lti_tool.demo_seed import (
    SeedContext,
    practice_course,
    register_practice_lms,
    seed_passed_learner,
)
from lti_tool.store.models.badges import Credential
from tests.badges.conftest import assert_schema_valid


def test_demo_seeds_a_learner_who_has_passed(db, settings) -> None:
    ctx = SeedContext(db=db, settings=settings, course=practice_course(),
                      lms_url="http://127.0.0.1:8001")
    register_practice_lms(ctx)
    seed_passed_learner(ctx)
    seed_passed_learner(ctx)  # a restart runs the steps again
    credential = db.query(Credential).one()
    document = json.loads(credential.document)
    assert_schema_valid(document)
    assert document["credentialSubject"]["achievement"]["humanCode"] == "DLE-101"
    names = [i["identityHash"] for i in document["credentialSubject"]["identifier"]
             if i["identityType"] == "name"]
    assert names == [practice_course().learners[0].name]
    assert Verifier(db, settings).verify_bytes(credential.jwt.encode()).valid
