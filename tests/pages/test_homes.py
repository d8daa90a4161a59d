"""The three home pages the launch redirects to, the layout, and the language switch."""

from __future__ import annotations

import re

import pytest

from tests.conftest import session_headers

HOMES = {"learner1": "/learner/", "instructor": "/instructor/", "admin": "/admin/"}


@pytest.mark.parametrize("who", list(HOMES))
def test_each_role_reaches_its_home_with_a_cookieless_session(client, course, who) -> None:
    reply = client.get(HOMES[who], headers=session_headers(course.tokens[who]))
    assert reply.status_code == 200
    page = reply.get_data(as_text=True)
    assert '<html lang="en">' in page
    assert 'href="#main"' in page and '<main id="main"' in page
    # every link the page builds keeps the cookie-less session with its own one-time code;
    # the session token itself is never in the page (its POST forms carry a page token)
    codes = re.findall(r'href="/[^"]*[?;]lc=([A-Za-z0-9._-]+)', page)
    assert codes and len(set(codes)) == len(codes), codes
    assert course.tokens[who] not in page


def test_launch_locale_picks_turkish(client, db) -> None:
    from testkit.seed import seed_course

    tr = seed_course(db, locale="tr-TR")
    page = client.get("/learner/", headers=session_headers(tr.tokens["learner1"])).get_data(True)
    assert '<html lang="tr">' in page
    assert "Mikro" in page  # "Mikro yeterlilikler"


def test_language_switch_is_remembered_for_the_session(client, course) -> None:
    sid = course.tokens["learner1"]
    first = client.get("/learner/", headers=session_headers(sid),
                       query_string={"lang": "tr"}).get_data(True)
    assert '<html lang="tr">' in first
    # the switch link keeps the session (a fresh code), and the next page stays Turkish
    assert re.search(r'href="/learner/\?lc=[^"&]+&amp;lang=en"', first)
    later = client.get("/learner/", headers=session_headers(sid)).get_data(True)
    assert '<html lang="tr">' in later


def test_admin_home_lists_deployments_and_audit(client, course, db) -> None:
    from lti_tool.store.models.core import AuditEntry, Platform

    institution_id = db.get(Platform, course.platform_id).institution_id
    db.add(AuditEntry(institution_id=institution_id, platform_id=course.platform_id,
                      actor_label="Office", action="microcredential.approve",
                      target="MC-DATA"))
    db.add(AuditEntry(platform_id=None, actor_label="elsewhere", action="other.platform"))
    db.commit()
    page = client.get("/admin/", headers=session_headers(course.tokens["admin"])).get_data(True)
    # the action in words, not its code
    assert "approved a micro-credential" in page and "microcredential.approve" not in page
    assert "other platform" not in page
    assert "<code>1</code>" in page
    found = client.get("/admin/audit", headers=session_headers(course.tokens["admin"]),
                       query_string={"q": "APPROVE"}).get_data(True)
    assert "approved a micro-credential" in found
    none = client.get("/admin/audit", headers=session_headers(course.tokens["admin"]),
                      query_string={"q": "zzz"}).get_data(True)
    assert "approved a micro-credential" not in none


def test_office_home_shows_queues_and_issued_credentials(client, db, settings) -> None:
    from lti_tool.badges.issuance import issue_on_pass
    from lti_tool.store.db import utcnow
    from lti_tool.store.models.catalogue import MicroCredentialVersion
    from testkit.seed import seed_course, seed_offering

    course = seed_offering(db, seed_course(db))
    version = db.query(MicroCredentialVersion).one()
    credential = issue_on_pass(db, settings, person_id=course.people["learner1"],
                               mc_version_id=version.id, offering_id=course.offering_id,
                               outcome_levels={}, passed_at=utcnow())
    db.commit()
    html = client.get("/admin/", headers=session_headers(course.tokens["admin"])).get_data(True)
    assert "1 valid, 0 revoked." in html
    assert f"/admin/credentials/{credential.public_id}" in html  # links to the revocation page
    assert 'action="/admin/credentials/' in html  # the search goes to the badges' list
    assert 'name="lc" value="p.' in html  # a GET form's one-time code, not the session
    # due in 30 days: on the revalidation list, with the catalogue's page linked
    assert "Revalidation due" in html and f"/admin/microcredentials/{version.micro_credential_id}"\
        in html
