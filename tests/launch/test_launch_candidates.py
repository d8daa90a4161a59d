"""`launch_candidates` reads in one query what a launch used to read with three (its issuer's
registrations, each one's deployment row and whether it used the nonce): the same answers as
`platforms_for_issuer`, `find_deployment` and a UsedNonce lookup, on generated tables."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from lti_tool.launch.platforms import find_deployment, launch_candidates, platforms_for_issuer
from lti_tool.store.db import utcnow
from lti_tool.store.models.core import Deployment, UsedNonce
from testkit.lti import register_platform

ISSUERS = ("https://a.example", "https://b.example")
DEPLOYMENT_IDS = ("1", "2", "42:abc", "")
NONCES = ("n1", "n2", "")
# (issuer index, client_id) of the registrations: two share an issuer, as Canvas cloud's do
REGISTRATIONS = ((0, "client-1"), (0, "client-2"), (1, "client-1"))


def _general(db, issuer: str, deployment_id: str, nonce: str) -> dict:
    """What the three separate lookups answer, per client_id."""
    answers = {}
    for platform in platforms_for_issuer(db, issuer):
        row = find_deployment(db, platform, deployment_id)
        used = db.scalar(select(UsedNonce.id).where(UsedNonce.platform_id == platform.id,
                                                    UsedNonce.nonce == nonce)) is not None
        answers[platform.client_id] = (platform.id, row.id if row else None, used)
    return answers


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(deployments=st.lists(st.sets(st.sampled_from(DEPLOYMENT_IDS[:3])),
                            min_size=3, max_size=3),
       used=st.lists(st.sets(st.sampled_from(NONCES[:2])), min_size=3, max_size=3),
       issuer=st.sampled_from((*ISSUERS, "https://unknown.example")),
       deployment_id=st.sampled_from(DEPLOYMENT_IDS), nonce=st.sampled_from(NONCES))
def test_one_query_answers_as_the_three_lookups(db, registrations, deployments, used, issuer,
                                                deployment_id, nonce):
    platforms = [db.merge(p) for p in registrations]
    try:
        for platform, ids, nonces in zip(platforms, deployments, used, strict=True):
            db.add_all(Deployment(platform_id=platform.id, deployment_id=d) for d in ids)
            db.add_all(UsedNonce(platform_id=platform.id, nonce=n,
                                 expires_at=utcnow() + timedelta(minutes=5)) for n in nonces)
        db.flush()
        fast = {c.platform.client_id: (c.platform.id,
                                       c.deployment.id if c.deployment else None, c.nonce_used)
                for c in launch_candidates(db, issuer, deployment_id, nonce)}
        assert fast == _general(db, issuer, deployment_id, nonce)
    finally:
        db.rollback()


@pytest.fixture
def registrations(db):
    """The three registrations, shared by the examples (their rows come per example)."""
    return [register_platform(db, issuer=ISSUERS[i], client_id=client, deployments=())
            for i, client in REGISTRATIONS]
