"""Canvas REST: per_page=100 and every Link page."""

from __future__ import annotations

from datetime import UTC, datetime

from lti_tool.lms.canvas_rest import CanvasRest


def _rest(services, per_page: int = 100) -> CanvasRest:
    return CanvasRest(services.http, services.fake.base_url, services.fake.canvas_token,
                      per_page=per_page)


def test_asks_for_100_per_page(canvas) -> None:
    assert [a["name"] for a in _rest(canvas).assignments("311")] == [
        "Data cleaning project", "Quiz 1"]
    [(_, path)] = canvas.fake.log
    assert "per_page=100" in path


def test_follows_every_next_link(canvas) -> None:
    users = list(_rest(canvas, per_page=1).users("311"))
    assert [u["lti_id"] for u in users][0] == "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
    assert len(users) == 3 and canvas.fake.count("/users") == 3


def test_submissions_with_rubric_assessment_and_graded_since(canvas) -> None:
    rest = _rest(canvas)
    pages = list(rest.submission_pages("311"))
    first = pages[0][0]
    assert first["rubric_assessment"]["_4021"]["points"] == 3.0
    later = list(rest.submission_pages("311", datetime(2026, 11, 21, 9, 1, tzinfo=UTC)))
    assert [s["id"] for page in later for s in page] == [2]
    assert "graded_since=2026-11-21T09:01:00Z" in canvas.fake.log[-1][1]


def test_outcome_results_with_linked_outcomes(canvas) -> None:
    results, outcomes = _rest(canvas).outcome_results("311")
    assert results[0]["links"]["learning_outcome"] == "7"
    assert outcomes["7"]["title"] == "Interprets data"


def test_base_url_may_be_the_api_root(canvas) -> None:
    rest = CanvasRest(canvas.http, canvas.fake.base_url + "/api/v1/", canvas.fake.canvas_token)
    assert len(list(rest.assignments("311"))) == 2
