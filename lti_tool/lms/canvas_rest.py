"""Canvas REST API (`/api/v1`): assignments with rubrics, submissions with rubric assessments,
Outcomes results, and the course's users (to match Canvas user ids to LTI `sub`s).

Lists are paged with `Link: <…>; rel="next"`; we ask for `per_page=100`, Canvas's maximum.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from lti_tool.lms.http import LmsBadReply, LmsHttp, expect_ok
from lti_tool.lms.service import iter_pages, with_query

PER_PAGE = 100


class CanvasRest:
    """One Canvas instance, called with an API token."""

    def __init__(self, http: LmsHttp, base_url: str, token: str, per_page: int = PER_PAGE
                 ) -> None:
        self.http = http
        # The instance URL, or its API root as config/platforms/canvas-cloud.toml shows it.
        self.base = base_url.rstrip("/").removesuffix("/api/v1")
        self.token = token
        self.per_page = per_page

    def _get(self, url: str, needed: str) -> Any:
        return self.http.get(url, needed=needed, headers={
            "Authorization": f"Bearer {self.token}", "Accept": "application/json"})

    def _pages(self, path: str, params: list[tuple[str, str]], needed: str, what: str
               ) -> Iterator[Any]:
        url = with_query(self.base + path, per_page=self.per_page)
        if params:
            url += "&" + "&".join(f"{k}={v}" for k, v in params)
        for body, _response in iter_pages(lambda page: self._get(page, needed), url, what):
            yield body

    def _list(self, path: str, params: list[tuple[str, str]], needed: str, what: str
              ) -> Iterator[dict]:
        for body in self._pages(path, params, needed, what):
            if not isinstance(body, list):
                raise LmsBadReply(f"Canvas's reply for {what} is not a list.")
            yield from (entry for entry in body if isinstance(entry, dict))

    def assignments(self, course_id: str) -> Iterator[dict]:
        """Assignments with `points_possible`, `updated_at` and `rubric` (criteria, ratings)."""
        return self._list(f"/api/v1/courses/{course_id}/assignments", [],
                          "permission to read the course's assignments", "assignments")

    def omit_from_final_grade(self, course_id: str, name: str) -> int | None:
        """Mark the assignment Canvas made for an AGS line item (same name, no submission)
        "do not count towards the final grade"; its id, or None when no single one matches."""
        found = [a for a in self.assignments(course_id)
                 if a.get("name") == name and a.get("submission_types") in (["none"], None)]
        if len(found) != 1 or not isinstance(found[0].get("id"), int):
            return None
        assignment_id = found[0]["id"]
        response = self.http.request(
            "PUT", f"{self.base}/api/v1/courses/{course_id}/assignments/{assignment_id}",
            data={"assignment[omit_from_final_grade]": "true"}, idempotent=True,
            needed="permission to edit the course's assignments",
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"})
        expect_ok(response, "the assignment edit")
        return assignment_id

    def users(self, course_id: str) -> Iterator[dict]:
        """Course users with `lti_id` (the LTI 1.3 `sub`) and `uuid`."""
        return self._list(
            f"/api/v1/courses/{course_id}/users",
            [("include[]", "lti_id"), ("include[]", "uuid"), ("include[]", "enrollments")],
            "permission to list the course's users", "course users")

    def submission_pages(self, course_id: str, graded_since: datetime | None = None
                         ) -> Iterator[list[dict]]:
        """Every learner's submissions with rubric assessments, one list per page.

        With `graded_since`, only submissions graded after it (the sync's incremental mode).
        """
        params = [("student_ids[]", "all"), ("include[]", "rubric_assessment")]
        if graded_since is not None:
            params.append(("graded_since", graded_since.strftime("%Y-%m-%dT%H:%M:%SZ")))
        for body in self._pages(f"/api/v1/courses/{course_id}/students/submissions", params,
                                "permission to view all grades", "submissions"):
            if not isinstance(body, list):
                raise LmsBadReply("Canvas's reply for submissions is not a list.")
            yield [entry for entry in body if isinstance(entry, dict)]

    def outcome_results(self, course_id: str) -> tuple[list[dict], dict[str, dict]]:
        """Outcome results and the outcomes they refer to (by id), across all pages."""
        results: list[dict] = []
        outcomes: dict[str, dict] = {}
        for body in self._pages(f"/api/v1/courses/{course_id}/outcome_results",
                                [("include[]", "outcomes")],
                                "permission to view Outcomes results", "outcome results"):
            if not isinstance(body, dict):
                raise LmsBadReply("Canvas's outcome results reply is not an object.")
            results += [r for r in body.get("outcome_results") or [] if isinstance(r, dict)]
            linked = body.get("linked")
            for outcome in (linked.get("outcomes") if isinstance(linked, dict) else None) or []:
                if isinstance(outcome, dict) and "id" in outcome:
                    outcomes[str(outcome["id"])] = outcome
        return results, outcomes
