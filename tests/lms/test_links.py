"""Link headers: Moodle's malformed AGS header, NRPS's well-formed one, and anything else."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lti_tool.lms.links import next_link, parse_link_header
from tests.conftest import load_fixture


def test_moodle_lineitems_header_with_typographic_quotes_and_amp() -> None:
    header = load_fixture("moodle", "ags_instructor_lineitems_exchanges.json")[
        "lineitems_limit1"]["headers"]["Link"]
    links = parse_link_header(header)
    base = "http://127.0.0.1:8100/mod/lti/services.php/2/lineitems?type_id=1&limit=1"
    assert links == {"first": base + "&from=0", "canonical": base + "&from=0",
                     "next": base + "&from=1", "last": base + "&from=5"}


def test_nrps_header_is_read_as_is() -> None:
    headers = load_fixture("moodle", "nrps_membership.json")["nrps_limit2"]["headers"]
    assert next_link(headers) == (
        "http://127.0.0.1:8100/mod/lti/services.php/CourseSection/2/bindings/1/memberships"
        "?limit=2&from=2")


def test_variants_of_quoting_and_several_relations() -> None:
    header = ("<https://a/x?page=2>; rel=“next”, <https://a/x?page=9>; rel='last first', "
              "<https://a/x?page=1>; title=\"p; q\"; rel=prev")
    links = parse_link_header(header)
    assert links["next"] == "https://a/x?page=2"
    assert links["last"] == links["first"] == "https://a/x?page=9"
    assert links["prev"] == "https://a/x?page=1"


def test_no_next_on_last_page() -> None:
    assert next_link({"Link": '<https://a/x?page=1>; rel="first"'}) is None
    assert next_link({}) is None


@given(st.text())
def test_never_raises_on_any_text(value: str) -> None:
    result = parse_link_header(value)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.items())


urls = st.builds(lambda path, n: f"https://lms.example/{path}?from={n}&limit=10",
                 st.text(alphabet="abcdefghij/", min_size=1, max_size=20),
                 st.integers(0, 10**6))
rels = st.sampled_from(["next", "prev", "first", "last", "canonical"])
quotes = st.sampled_from([('"', '"'), ("“", "”"), ("\u00e2\u0080\u009c", "\u00e2\u0080\u009d"),
                          ("", "")])


@given(st.lists(st.tuples(urls, rels, quotes), min_size=1, max_size=5, unique_by=lambda t: t[1]),
       st.booleans())
def test_well_formed_and_moodle_style_headers_round_trip(entries, escape_amp: bool) -> None:
    parts = []
    for url, rel, (open_q, close_q) in entries:
        shown = url.replace("&", "&amp;") if escape_amp else url
        parts.append(f"<{shown}>; rel={open_q}{rel}{close_q}")
    assert parse_link_header(", ".join(parts)) == {rel: url for url, rel, _ in entries}
