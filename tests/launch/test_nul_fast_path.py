"""`parse_token` skips the walk for U+0000 when the payload's JSON text cannot hold one
(`may_hold_nul`): on generated JSON, in every encoding the parser reads, the fast answer is
the walk's."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from lti_tool.launch.validation import contains_nul, may_hold_nul

# Text that often holds NUL, backslashes and the letters of an escape written out.
TEXT = st.text(alphabet=st.sampled_from(["\x00", "\\", "u", "0", "a", "é", "\U0001f600", '"']),
               max_size=12) | st.text(max_size=8)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be",
                             "utf-32", "utf-32-le", "utf-32-be"])


@given(value=st.dictionaries(TEXT, JSON_VALUES, max_size=5), ascii_only=st.booleans(),
       encoding=ENCODINGS)
def test_the_fast_check_answers_as_the_walk(value, ascii_only, encoding):
    raw = json.dumps(value, ensure_ascii=ascii_only).encode(encoding)
    parsed = json.loads(raw)  # what parse_token walks: the parser's reading of these bytes
    assert (may_hold_nul(raw) and contains_nul(parsed)) == contains_nul(parsed)


def test_a_written_out_escape_is_no_nul_but_is_walked():
    raw = json.dumps({"name": "\\u0000"}).encode()
    assert may_hold_nul(raw) and not contains_nul(json.loads(raw))
    assert not may_hold_nul(json.dumps({"name": "plain"}).encode())
