"""The learner page: status, level per outcome against the threshold, rubric, own rows only."""

from __future__ import annotations

from testkit.seed import seed_decision
from tests.conftest import session_headers


def page(client, token: str, **args) -> str:
    reply = client.get("/learner/", headers=session_headers(token), query_string={**args})
    assert reply.status_code == 200
    return reply.get_data(as_text=True)


def test_progress_shows_levels_threshold_and_what_is_missing(client, db, offered) -> None:
    seed_decision(db, offered, "learner1", [80, 60, None], status="failed")
    html = page(client, offered.tokens["learner1"])
    assert "Data Literacy Basics" in html and "DATA-101" in html
    assert 'class="status status-failed">failed<' in html
    assert "Proficient" in html and "(attained)" in html  # LO1, words next to the colour
    assert "below Proficient" in html  # LO2
    assert "10 percentage points to reach Proficient" in html
    assert "No mark yet." in html  # LO3
    # the rubric is there before anything is assessed, threshold named
    assert "Applies correctly alone." in html and "threshold" in html
    # failed, policy learner_request, none used: may ask, with a deadline
    assert "You may ask once for a re-evaluation" in html and "It opens as soon as you ask" in html


def test_rubric_is_visible_before_any_assessment(client, offered) -> None:
    html = page(client, offered.tokens["learner1"])
    assert 'status-in_progress">in progress<' in html
    assert "Adapts to new cases." in html and "assessment closes on" in html
    assert html.count("not yet assessed") >= 3


def test_reevaluation_states(client, db, offered) -> None:
    seed_decision(db, offered, "learner1", [80, 72, 90], status="reevaluation_granted",
                  reevaluations_used=1)
    html = page(client, offered.tokens["learner1"])
    # the status says "re-evaluation open" once, then only the date
    assert html.count("re-evaluation open") == 1 and "re-evaluation open until" not in html
    assert "— until " in html
    assert "Request re-evaluation" not in html and "You may ask once" not in html


def test_a_learner_sees_only_their_own_decision(client, db, offered) -> None:
    seed_decision(db, offered, "learner1", [12.5, 60, 70], status="failed")
    seed_decision(db, offered, "learner2", [91.7, 98, 97], status="passed")
    mine = page(client, offered.tokens["learner2"])
    assert "status-passed" in mine and "12.5%" not in mine and "status-failed" not in mine
    theirs = page(client, offered.tokens["learner1"])
    assert "12.5%" in theirs and "91.7%" not in theirs


def test_turkish_learner_page(client, db, offered) -> None:
    seed_decision(db, offered, "learner1", [80, 60, None], status="failed")
    html = page(client, offered.tokens["learner1"], lang="tr")
    assert '<html lang="tr">' in html
    assert "Öğrenme çıktıları" in html and "başarısız" in html
    assert "%80" in html and "80%" not in html  # the percent sign goes first in Turkish


def test_requesting_a_reevaluation_from_the_page_opens_it(app, client, db, offered) -> None:
    """The page's form posts to the evaluation area; back on the page the learner sees the
    notice and the re-evaluation open until its closing date."""
    from lti_tool.web.auth import CSRF_HEADER, csrf_token

    seed_decision(db, offered, "learner1", [80, 60, 30], status="failed")
    token = offered.tokens["learner1"]
    html = page(client, token)
    action = f"/learner/offerings/{offered.offering_id}/reevaluation-request"
    assert f'action="{action}?lc=' in html and token not in html
    with app.test_request_context(headers=session_headers(token)):
        app.preprocess_request()
        headers = {CSRF_HEADER: csrf_token()}
    reply = client.post(action, data={"reason": "I was ill during the lab."},
                        headers={**headers, **session_headers(token)})
    assert reply.status_code == 303, reply.get_data(True)[:300]
    after = client.get(reply.location).get_data(True)
    assert 'role="status"' in after and "Your re-evaluation is open." in after
    assert "— until " in after and "Request re-evaluation" not in after
    assert "notice=" not in reply.location  # kept on the session, not in the URL
    assert after.count("Your re-evaluation is open.") == 1
    # shown once: a reload does not bring it back
    assert "Your re-evaluation is open." not in client.get(reply.location).get_data(True)


def test_the_request_deadline_is_shown_and_checked_by_the_same_rule(client, db, offered) -> None:
    """Issue 12: a learner past the request deadline gets no button (it would answer 409), and
    a learner before it sees until when they may ask."""
    from datetime import timedelta

    from lti_tool.store.db import utcnow

    decision = seed_decision(db, offered, "learner1", [80, 60, 30], status="failed")
    offering_days = 14
    decision.decided_at = utcnow() - timedelta(days=offering_days + 1)
    db.commit()
    late = page(client, offered.tokens["learner1"])
    assert "Request re-evaluation" not in late
    assert "Requests for a re-evaluation closed on" in late
    decision.decided_at = utcnow() - timedelta(days=1)
    db.commit()
    html = page(client, offered.tokens["learner1"])
    assert "Request re-evaluation" in html
    assert "You can ask until" in html
