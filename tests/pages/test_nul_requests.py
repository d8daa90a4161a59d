"""A NUL character anywhere a request carries text is a clear 400 (PostgreSQL refuses NUL in
text, so it reached the database as a 500: `/credentials/<id>` with a NUL in the id)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import session_headers

PLAIN = st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                       blacklist_characters="\x00/?#%"), max_size=20)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=PLAIN, after=PLAIN)
def test_a_nul_in_a_path_is_a_400(client, before, after) -> None:
    for prefix in ("/credentials/", "/status/", "/issuers/", "/verify/"):
        response = client.get(prefix + before + "%00" + after)
        assert response.status_code == 400, (prefix, response.status_code)
        assert "NUL" in response.get_data(as_text=True)


def test_a_nul_in_a_parameter_or_a_form_is_a_400_and_changes_nothing(client, course, db) -> None:
    from sqlalchemy import func, select

    from lti_tool.store.models.core import AuditEntry

    before = db.scalar(select(func.count()).select_from(AuditEntry))
    assert client.get("/admin/audit", query_string={"q": "a\x00b"},
                      headers=session_headers(course.tokens["admin"])).status_code == 400
    assert client.post("/verify", data={"url": "https://x.example/\x00"}).status_code == 400
    assert client.get("/credentials/abc", headers={"X-Request-Id": "a\x00"}).status_code in (
        400, 404)  # a header value with NUL never reaches a view
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(AuditEntry)) == before


def test_a_nul_in_a_repeated_parameter_or_a_name_is_a_400(client) -> None:
    """Not only the first value of a name: a NUL in its second value, or in the name itself."""
    from werkzeug.datastructures import MultiDict

    assert client.post("/verify", data=MultiDict([("url", "https://x.example/"),
                                                  ("url", "https://y.example/\x00")])
                       ).status_code == 400
    repeated = MultiDict([("q", "a"), ("q", "b\x00")])
    assert client.get("/verify", query_string=repeated).status_code == 400
    assert client.post("/verify", data={"u\x00rl": "https://x.example/"}).status_code == 400
